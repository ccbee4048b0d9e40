"""Format a short report about shapes."""

from shapes.geometry import Rectangle, area_of_circle, scale


def describe_rectangle(rect: Rectangle) -> str:
    return f"{rect.width} x {rect.height}: area {rect.area():.2f}"


def summary(radius: float, rect: Rectangle) -> str:
    circle = area_of_circle(radius)
    bigger = scale(rect, 2)
    lines = [
        f"circle of radius {radius}: area {circle:.2f}",
        describe_rectangle(rect),
        describe_rectangle(bigger),
    ]
    return "\n".join(lines)
