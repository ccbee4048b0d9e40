"""Geometry helpers."""

import math
from dataclasses import dataclass


def area_of_circle(radius: float) -> float:
    """Return the area of a circle of the given radius."""
    if radius < 0:
        raise ValueError("radius must not be negative")
    return math.pi * radius * radius


@dataclass
class Rectangle:
    width: float
    height: float

    def area(self) -> float:
        return self.width * self.height

    def perimeter(self) -> float:
        # Bug on purpose: the demo's test run reports it.
        return self.width + self.height


def scale(rect: Rectangle, factor: float) -> Rectangle:
    """Return a copy of ``rect`` scaled by ``factor``."""
    return Rectangle(rect.width * factor, rect.height * factor)
