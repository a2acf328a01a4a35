"""Walking distances: doors and corridors, not straight lines through walls. No database."""

import math

import pytest

from hospital.wayfinding import Candidate, FloorSpec, WalkGraph, ZoneSpec


def rect(x0, y0, x1, y1):
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def ward(floor_id: int, first_id: int, *, stairs: bool = False) -> list[ZoneSpec]:
    """A double-loaded corridor like the demo's: four rooms south (y 0-7), a corridor (7-10),
    four rooms north (10-17), each room 5 m wide; optionally stairs at the east end."""
    zones = []
    for i in range(4):
        zones.append(ZoneSpec(first_id + i, floor_id, "room", rect(5 * i, 0, 5 * i + 5, 7)))
        zones.append(ZoneSpec(first_id + 10 + i, floor_id, "room", rect(5 * i, 10, 5 * i + 5, 17)))
    zones.append(ZoneSpec(first_id + 50, floor_id, "corridor", rect(0, 7, 20, 10)))
    if stairs:
        zones.append(ZoneSpec(first_id + 60, floor_id, "stairs", rect(20, 7, 24, 10)))
    return zones


FLOOR = FloorSpec(1, 1, 0)
SOUTH_0, SOUTH_1, NORTH_1, CORRIDOR = 100, 101, 111, 150


@pytest.fixture
def one_floor():
    return WalkGraph([FLOOR], ward(1, 100))


def test_straight_line_nearest_is_the_wrong_answer(one_floor):
    """From south room 1, the pump in the next room is 5 m away through the wall but 12 m on
    foot; the one across the corridor is 10 m away in both senses and is the right answer."""
    next_door = Candidate(1, 1, 2.5, 3.5, SOUTH_0)
    across = Candidate(2, 1, 7.5, 13.5, NORTH_1)
    ranked = one_floor.rank(SOUTH_1, [next_door, across])
    assert [r.id for r in ranked] == [2, 1]
    assert ranked[0].distance_m == pytest.approx(10.0)
    assert ranked[1].distance_m == pytest.approx(3.5 + 5.0 + 3.5)
    assert ranked[1].straight_m == pytest.approx(5.0)
    assert ranked[1].straight_m < ranked[0].straight_m


def test_a_corridor_is_walked_along_not_through_its_middle(one_floor):
    far = Candidate(1, 1, 17.5, 3.5, 103)
    (result,) = one_floor.rank(SOUTH_0, [far])
    assert result.distance_m == pytest.approx(3.5 + 15.0 + 3.5)


def test_route_goes_through_the_corridor(one_floor):
    assert one_floor.route(SOUTH_1, SOUTH_0) == [SOUTH_1, CORRIDOR, SOUTH_0]


def test_room_to_room_connects_every_wall_when_asked():
    graph = WalkGraph([FLOOR], ward(1, 100), room_to_room=True)
    ranked = graph.rank(
        SOUTH_1, [Candidate(1, 1, 2.5, 3.5, SOUTH_0), Candidate(2, 1, 7.5, 13.5, NORTH_1)]
    )
    assert [r.id for r in ranked] == [1, 2]


def test_a_gap_narrower_than_a_door_is_a_wall():
    zones = [
        ZoneSpec(1, 1, "room", rect(0, 0, 5, 5)),
        ZoneSpec(2, 1, "corridor", rect(4.5, 5, 20, 8)),  # shares 0.5 m with room 1
        ZoneSpec(3, 1, "room", rect(10, 0, 15, 5)),
    ]
    graph = WalkGraph([FLOOR], zones)
    assert graph.rank(3, [Candidate(9, 1, 1, 1, 1)]) == []
    assert graph.route(3, 1) == []


def test_zones_touching_at_a_corner_are_not_connected():
    zones = [ZoneSpec(1, 1, "room", rect(0, 0, 5, 5)), ZoneSpec(2, 1, "corridor", rect(5, 5, 9, 9))]
    assert WalkGraph([FLOOR], zones).shared_wall(1, 2) is None


def test_an_asset_in_the_same_room_is_the_straight_distance(one_floor):
    (result,) = one_floor.rank(SOUTH_1, [Candidate(1, 1, 5.5, 0.5, SOUTH_1)])
    assert result.distance_m == pytest.approx(math.hypot(2.0, 3.0), abs=0.01)
    assert result.floor_changes == 0


def test_floors_join_through_stairs_and_count_the_change():
    floors = [FloorSpec(1, 1, 0), FloorSpec(2, 1, 1)]
    zones = ward(1, 100, stairs=True) + ward(2, 200, stairs=True)
    graph = WalkGraph(floors, zones, level_change_m=15.0)
    same_floor_far = Candidate(1, 1, 17.5, 13.5, 113)
    upstairs_near = Candidate(2, 2, 2.5, 3.5, 200)
    ranked = graph.rank(SOUTH_0, [upstairs_near, same_floor_far])
    assert [r.id for r in ranked] == [1, 2]
    assert ranked[1].floor_changes == 1
    assert ranked[1].straight_m is None
    # to the stairs (along the corridor), up one level, back along the corridor upstairs
    door, stairs_door = (2.5, 7.0), (20.0, 8.5)
    along = math.dist(door, stairs_door) + 2.0
    assert ranked[1].distance_m == pytest.approx(3.5 + along + 15.0 + along + 3.5, abs=0.01)
    assert graph.route(SOUTH_0, 200) == [SOUTH_0, CORRIDOR, 160, 260, 250, 200]


def test_floors_without_stairs_cost_the_configured_floor_change():
    floors = [FloorSpec(1, 1, 0), FloorSpec(2, 1, 1), FloorSpec(3, 1, 2)]
    zones = ward(1, 100) + ward(2, 200) + ward(3, 300)
    graph = WalkGraph(floors, zones, floor_change_cost_m=40.0)
    up_two = Candidate(3, 3, 2.5, 3.5, 300)
    up_one = Candidate(2, 2, 2.5, 3.5, 200)
    ranked = graph.rank(SOUTH_0, [up_two, up_one])
    assert [(r.id, r.floor_changes) for r in ranked] == [(2, 1), (3, 2)]
    assert ranked[0].distance_m == pytest.approx(40.0)
    assert ranked[1].distance_m == pytest.approx(80.0)


def test_a_floor_is_never_crossed_through_the_virtual_landing():
    floors = [FloorSpec(1, 1, 0), FloorSpec(2, 1, 1)]
    graph = WalkGraph(floors, ward(1, 100) + ward(2, 200), floor_change_cost_m=1.0)
    (result,) = graph.rank(SOUTH_0, [Candidate(1, 1, 17.5, 3.5, 103)])
    assert result.distance_m == pytest.approx(2.0)  # down and up again: 2 x 1 m
    assert result.floor_changes == 2


def test_other_buildings_are_unreachable_without_a_link():
    floors = [FloorSpec(1, 1, 0), FloorSpec(2, 2, 0)]
    graph = WalkGraph(floors, ward(1, 100) + ward(2, 200))
    assert graph.rank(SOUTH_0, [Candidate(1, 2, 2.5, 3.5, 200)]) == []


def test_an_asset_without_a_zone_is_placed_by_its_position(one_floor):
    (result,) = one_floor.rank(SOUTH_0, [Candidate(1, 1, 7.5, 13.5, None)])
    assert result.zone_id == NORTH_1
    assert one_floor.zone_at(1, 7.5, 17.3) == NORTH_1


def test_unknown_start_zone_is_an_error(one_floor):
    with pytest.raises(KeyError):
        one_floor.rank(999, [])
