import math

from shapes.geometry import Rectangle, area_of_circle, scale


def test_area_of_circle():
    assert area_of_circle(2) == math.pi * 4


def test_scale():
    assert scale(Rectangle(1, 2), 3) == Rectangle(3, 6)


def test_perimeter():
    assert Rectangle(2, 3).perimeter() == 10
