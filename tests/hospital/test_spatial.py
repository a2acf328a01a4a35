"""Zone lookup through the cached per-floor index."""

import pytest

from hospital.geometry import FloorGeometry, ZoneShape
from hospital.spatial import floor_geometry, zone_at
from tests.factories import FloorFactory, ZoneFactory


def square(x0, y0, size=5.0):
    return ((x0, y0), (x0 + size, y0), (x0 + size, y0 + size), (x0, y0 + size))


def test_a_point_is_found_in_its_zone_and_outside_points_in_none():
    geometry = FloorGeometry(
        20, 10, [ZoneShape("A", "room", square(0, 0)), ZoneShape("B", "room", square(5, 0))]
    )
    assert geometry.zone_at(1, 1).name == "A"
    assert geometry.zone_at(7, 4).name == "B"
    assert geometry.zone_at(15, 8) is None


def test_walls_between_counts_each_shared_wall_once():
    geometry = FloorGeometry(
        20, 10, [ZoneShape("A", "room", square(0, 0)), ZoneShape("B", "room", square(5, 0))]
    )
    assert geometry.walls_between((1, 1), (2, 2)) == 0
    assert geometry.walls_between((1, 1), (7, 1)) == 1
    assert geometry.walls_between((1, 1), (12, 1)) == 2


@pytest.mark.django_db
def test_the_floor_index_follows_zone_edits():
    floor = FloorFactory()
    zone = ZoneFactory(floor=floor, name="101", polygon=[[0, 0], [5, 0], [5, 5], [0, 5]])
    assert zone_at(floor.pk, 2, 2) == zone
    assert floor_geometry(floor.pk) is floor_geometry(floor.pk)
    zone.polygon = [[10, 0], [15, 0], [15, 5], [10, 5]]
    zone.save()
    assert zone_at(floor.pk, 2, 2) is None
    assert zone_at(floor.pk, 12, 2) == zone
    zone.delete()
    assert zone_at(floor.pk, 12, 2) is None


@pytest.mark.django_db
def test_zone_model_validation_rejects_overlap_and_outside():
    from django.core.exceptions import ValidationError

    floor = FloorFactory(width_m=20, height_m=10)
    ZoneFactory(floor=floor, name="101", polygon=[[0, 0], [5, 0], [5, 5], [0, 5]])
    overlapping = ZoneFactory.build(floor=floor, name="102", polygon=[[4, 0], [8, 0], [8, 4]])
    with pytest.raises(ValidationError, match="overlaps zone '101'"):
        overlapping.full_clean()
    outside = ZoneFactory.build(floor=floor, name="103", polygon=[[18, 0], [25, 0], [25, 4]])
    with pytest.raises(ValidationError, match="outside the floor"):
        outside.full_clean()
