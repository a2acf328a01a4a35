"""bench.real_data: parsers on inline fixtures, then both real datasets end to end.

The real datasets are required: CI has them at ../shared/data beside the repository. A missing
data directory fails the tests instead of skipping them, so a broken CI mount cannot go unnoticed.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Point, Polygon

from bench import real_data as rd
from tracking.tagids import canonical_tag_id

SITE_KEYS = {"name", "buildings", "assets"}
BUILDING_KEYS = {"name", "floors"}
FLOOR_KEYS = {"name", "level", "width_m", "height_m", "zones", "scanners", "sensors"}
ZONE_KEYS = {"name", "kind", "polygon"}
SCANNER_KEYS = {"serial", "kind", "x", "y", "z", "rssi_at_1m", "path_loss_exponent"}
ASSET_KEYS = {"name", "type", "tag"}

DANIS_DEV = (
    'Dongles:{"b827eb4521b4": [[7.00, 7.09, 1.22], 16711680, "sensor10"], '
    '"000000000101": [[7.18, 0.68, 2.30], 16711730, "sensor11"], '
    '"000000000102": [[0.71, 6.16, 2.30], 16724480, "sensor12"] }\n'
    'Beacons:{"e78f135624ce": [[], 1328790, "beacon1"] }\n'
)
DANIS_PAR = '{"origin": [22, 9], "limits": [0.0, 0.0, 20.66, 17.641], "parity": 0.0296}\n'
DANIS_ROT = "0.062,-0.0,-0.998,0.998,0.017,0.062,0.017,-1.0,0.002"
DANIS_TRACK = (
    f"100.5,000000000101,e78f135624ce,-80,2.0,3.0,1.8,{DANIS_ROT}\n"
    f"100.2,b827eb4521b4,e78f135624ce,-70,1.9,3.0,1.8,{DANIS_ROT}\n"
    f"100.9,000000000102,e78f135624ce,42,2.1,-0.1,1.8,{DANIS_ROT}\n"
)
SAL_CONFIG = (
    "Label,Description,X,Y,Z\n\n"
    "O-DR,outside door right,2.21,3.10,0.99\n"
    "I-DL,inside door left,-1.55,-0.09,1.00\n"
    "I-E,inside end,-13.30,0.90,0.64\n\n"
)
SAL_CAR = (
    "superframe,O-DR,I-DL,I-E,Label,raw_photosensor_door,raw_photosensor_endpos\n"
    "0,-77,-66,-54,2,0,0\n"
    "1,-100,-66,-55,1,0,0\n"
    "3,-60,-80,1,0,1,0\n"
)
SAL_WALK = "superframe,O-DR,I-DL,I-E,Label,raw_photosensor_door\n0,-68,-64,-84,1,0\n"


# ---- pure parsers and helpers --------------------------------------------------------------


def test_canonical_mac_accepts_bare_and_separated_forms():
    assert rd.canonical_mac("e78f135624ce") == "mac:E7:8F:13:56:24:CE"
    assert rd.canonical_mac("e7:8f:13:56:24:ce") == "mac:E7:8F:13:56:24:CE"
    with pytest.raises(ValueError, match="not a MAC"):
        rd.canonical_mac("e78f1356")
    with pytest.raises(ValueError, match="not a MAC"):
        rd.canonical_mac("e78f135624zz")


def test_parse_danis_devices_and_limits():
    devices = rd.parse_danis_devices(DANIS_DEV)
    assert devices["Dongles"]["b827eb4521b4"] == {"alias": "sensor10", "pos": (7.0, 7.09, 1.22)}
    assert set(devices["Beacons"]) == {"e78f135624ce"}
    assert rd.parse_danis_limits(DANIS_PAR) == (0.0, 0.0, 20.66, 17.641)


def test_parse_danis_track_rows_and_column_check():
    rows = rd.parse_danis_track(DANIS_TRACK.splitlines())
    assert rows[0] == (100.5, "000000000101", "e78f135624ce", -80.0, 2.0, 3.0, 1.8)
    with pytest.raises(ValueError, match="line 1: expected 16 columns"):
        rd.parse_danis_track(["100.5,000000000101,e78f135624ce,-80,2.0,3.0,1.8"])


def test_parse_danis_stationary_name():
    assert rd.parse_danis_stationary_name("hst/set_1/sensor12_0.16_6.57_1.85.mbd") == (
        "sensor12",
        (0.16, 6.57, 1.85),
    )
    with pytest.raises(ValueError, match="not a stationary"):
        rd.parse_danis_stationary_name("hst/set_1/tetam_multi_rssi.hst")


def test_parse_sal_config_skips_blank_lines():
    sniffers = rd.parse_sal_config(SAL_CONFIG)
    assert list(sniffers) == ["O-DR", "I-DL", "I-E"]
    assert sniffers["I-E"]["pos"] == (-13.3, 0.9, 0.64)


def test_parse_sal_run_with_and_without_endpos_photosensor():
    car = rd.parse_sal_run(SAL_CAR)
    assert car.sniffers == ("O-DR", "I-DL", "I-E")
    assert car.frames == (0, 1, 3)
    assert car.rssi[1] == (-100.0, -66.0, -55.0)
    assert car.labels == (2, 1, 0)
    walk = rd.parse_sal_run(SAL_WALK)
    assert walk.labels == (1,)
    assert rd.parse_sal_run_name("car_sensor_2_measurement_3.csv") == ("car", 2, 3)


def test_format_ts_iso_milliseconds_and_epoch():
    assert rd.format_ts(1581249601.4086823) == "2020-02-09T12:00:01.409Z"
    assert rd.format_ts(1601510400.9996) == "2020-10-01T00:00:01.000Z"
    assert rd.format_ts(1.5, "epoch") == "1.500000"


def test_fit_log_distance_recovers_a_noiseless_model():
    d = np.linspace(0.5, 20, 50)
    fit = rd.fit_log_distance(-60 - 10 * 1.8 * np.log10(d), d)
    assert fit.rssi_at_1m == pytest.approx(-60)
    assert fit.path_loss_exponent == pytest.approx(1.8)
    assert fit.sigma_db == pytest.approx(0, abs=1e-9)


def test_trilaterate_finds_exact_position_and_respects_walls():
    anchors = np.array([[0, 0, 2.0], [10, 0, 2.0], [0, 8, 2.0], [10, 8, 2.0]])
    truth = np.array([[3.0, 5.0], [9.5, 0.5]])
    ranges = np.sqrt(((truth[:, None, :] - anchors[None, :, :2]) ** 2).sum(axis=2) + 0.04)
    start = np.full((2, 2), 5.0)
    found = rd.trilaterate(anchors, ranges, start, (10.0, 8.0), tag_height=1.8)
    np.testing.assert_allclose(found, truth, atol=1e-4)
    # Ranges all far too long push the answer outwards; it must stay on the floor.
    far = rd.trilaterate(anchors, ranges * 5, start, (10.0, 8.0), tag_height=1.8)
    assert ((far >= 0) & (far <= [10.0, 8.0])).all()


def test_trilaterate_agrees_with_scipy_on_noisy_ranges():
    from scipy.optimize import least_squares

    rng = np.random.default_rng(7)
    anchors = np.column_stack([rng.uniform(0, 20, 8), rng.uniform(0, 15, 8), np.full(8, 2.3)])
    truth = np.column_stack([rng.uniform(1, 19, 40), rng.uniform(1, 14, 40)])
    dist = np.sqrt(((truth[:, None, :] - anchors[None, :, :2]) ** 2).sum(axis=2) + 0.25)
    ranges = dist * np.exp(rng.normal(0, 0.2, dist.shape))
    start = np.full((40, 2), [10.0, 7.5])
    found = rd.trilaterate(anchors, ranges, start, (20.0, 15.0), tag_height=1.8)
    for row in range(40):

        def residual(p, row=row):
            return np.sqrt(((anchors[:, :2] - p) ** 2).sum(axis=1) + 0.25) - ranges[row]

        ref = least_squares(residual, start[row], bounds=([0, 0], [20, 15])).x
        np.testing.assert_allclose(found[row], ref, atol=1e-3)


def test_window_rssi_means_per_scanner_and_nan_when_unheard():
    readings = [(1.0, "a", "t", -60.0), (1.5, "a", "t", -70.0), (1.9, "b", "t", -80.0)]
    out = rd.window_rssi(readings, ["a", "b", "c"], np.array([1.2, 2.0, 2.0]), window_s=1.0)
    np.testing.assert_allclose(out[0], [-60, np.nan, np.nan])
    # The window is (t - window, t]: the reading at exactly t - window is out.
    np.testing.assert_allclose(out[1], [-70, -80, np.nan])
    wide = rd.window_rssi(readings, ["a", "b", "c"], np.array([2.0]), window_s=1.5)
    np.testing.assert_allclose(wide[0], [-65, -80, np.nan])


# ---- loaders on small synthetic dataset trees ------------------------------------------------


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    danis = tmp_path / rd.DANIS
    (danis / "cnf").mkdir(parents=True)
    (danis / "trk").mkdir()
    (danis / "cnf" / "tetam.dev").write_text(DANIS_DEV)
    (danis / "cnf" / "tetam.par").write_text(DANIS_PAR)
    (danis / "trk" / "walk_all_sensors.mbd").write_text(DANIS_TRACK)
    sal = tmp_path / rd.SAL
    (sal / "Dataset").mkdir(parents=True)
    (sal / "measurement_config.txt").write_text(SAL_CONFIG)
    (sal / "Dataset" / "car_sensor_2_measurement_1.csv").write_text(SAL_CAR)
    (sal / "Dataset" / "walk_sensor_1_measurement_1.csv").write_text(SAL_WALK)
    return tmp_path


def test_fake_danis_sorts_drops_faulty_rssi_and_labels_zones(fake_root):
    scenario = rd.load(rd.DANIS, fake_root)
    assert [r[0] for r in scenario.readings] == [100.2, 100.5]
    assert scenario.readings[0] == (100.2, "tetam-sensor10", "mac:E7:8F:13:56:24:CE", -70.0)
    assert scenario.dropped == {"rssi out of range": 1}
    # The faulty packet still carries a valid position; it lies outside the hall, so no zone.
    assert [t[5] for t in scenario.truth] == [rd.DANIS_ZONE, rd.DANIS_ZONE, ""]
    assert scenario.segments == [rd.Segment("walk", "mac:E7:8F:13:56:24:CE", 100.2, 100.9)]
    assert scenario.tag_height_m == pytest.approx(1.8)


def test_fake_sal_shifts_frame_drops_missing_links_and_lays_runs_end_to_end(fake_root):
    scenario = rd.load(rd.SAL, fake_root)
    scanners = {s["serial"]: s for s in scenario.floor["scanners"]}
    assert (scanners["sal-i-e"]["x"], scanners["sal-i-e"]["y"]) == (0.7, 2.9)
    assert scenario.dropped == {"missing link (-100)": 1, "rssi out of range": 1}
    car, walk = scenario.segments
    assert car.tag.endswith(":1:2")
    assert walk.tag.endswith(":1:1")
    assert (car.start, car.end) == (rd.SAL_EPOCH, rd.SAL_EPOCH + 0.3)
    assert walk.start >= car.end + rd.SAL_RUN_GAP_S
    assert [t[5] for t in scenario.truth] == ["Chamber", "Chamber", "Hall", "Chamber"]
    assert all(math.isnan(t[3]) and math.isnan(t[4]) for t in scenario.truth)
    assert not scenario.has_xy_truth


def test_load_rejects_unknown_names(fake_root):
    with pytest.raises(ValueError, match="unknown dataset"):
        rd.load("nope", fake_root)
    with pytest.raises(ValueError, match=r"unknown .* tracks"):
        rd.load(rd.DANIS, fake_root, segments=["nope"])
    with pytest.raises(FileNotFoundError, match="WARDWISE_SHARED_DATA"):
        rd.load(rd.DANIS, fake_root / "empty")


def test_data_root_env_override(monkeypatch, fake_root):
    monkeypatch.setenv(rd.DATA_ROOT_ENV, str(fake_root))
    assert rd.resolve_data_root() == fake_root
    assert rd.available_datasets() == [rd.DANIS, rd.SAL]
    monkeypatch.delenv(rd.DATA_ROOT_ENV)
    assert rd.resolve_data_root() == rd.REPO_ROOT.parent / "shared" / "data"


def test_cli_writes_site_trace_and_truth(fake_root, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    args = [rd.SAL, "--data-root", str(fake_root), "--site", str(out / "site.json")]
    args += ["--trace", str(out / "trace.csv"), "--truth", str(out / "truth.csv")]
    assert rd.main(args) == 0
    site = json.loads((out / "site.json").read_text())
    assert site["buildings"][0]["floors"][0]["name"] == rd.SAL_FLOOR
    with open(out / "trace.csv") as fh:
        trace = list(csv.DictReader(fh))
    assert list(trace[0]) == ["ts", "scanner", "tag", "rssi"]
    assert trace[0]["ts"] == "2020-10-01T00:00:00.000Z"
    assert len(trace) == 10
    with open(out / "truth.csv") as fh:
        truth = list(csv.DictReader(fh))
    assert list(truth[0]) == ["ts", "tag", "floor", "x", "y", "zone"]
    assert truth[0]["x"] == ""


# ---- the real datasets ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_root() -> Path:
    root = rd.resolve_data_root()
    if not root.is_dir():
        pytest.fail(
            f"shared data directory {root} is missing: mount it at ../shared/data beside the "
            f"repository or set {rd.DATA_ROOT_ENV}"
        )
    return root


@pytest.fixture(scope="module", params=[rd.DANIS, rd.SAL])
def scenario(request, data_root) -> rd.RealScenario:
    return rd.load(request.param, data_root)


def test_both_datasets_are_available(data_root):
    assert rd.available_datasets(data_root) == [rd.DANIS, rd.SAL]


def test_site_document_uses_only_contract_keys(scenario):
    site = scenario.site
    assert set(site) <= SITE_KEYS
    for building in site["buildings"]:
        assert set(building) <= BUILDING_KEYS
        for floor in building["floors"]:
            assert set(floor) <= FLOOR_KEYS
            assert all(set(z) <= ZONE_KEYS for z in floor["zones"])
            assert all(set(s) <= SCANNER_KEYS and s["kind"] == "ble" for s in floor["scanners"])
    assert all(set(a) <= ASSET_KEYS for a in site["assets"])
    json.dumps(site, allow_nan=False)


def test_scanners_lie_inside_the_floor(scenario):
    floor = scenario.floor
    for s in floor["scanners"]:
        assert 0 <= s["x"] <= floor["width_m"], s
        assert 0 <= s["y"] <= floor["height_m"], s
    assert len({s["serial"] for s in floor["scanners"]}) == len(floor["scanners"])


def test_zones_do_not_overlap_and_stay_on_the_floor(scenario):
    floor = scenario.floor
    outline = Polygon(
        [
            (0, 0),
            (floor["width_m"], 0),
            (floor["width_m"], floor["height_m"]),
            (0, floor["height_m"]),
        ]
    )
    polygons = [Polygon(z["polygon"]) for z in floor["zones"]]
    for i, polygon in enumerate(polygons):
        assert polygon.is_valid
        assert outline.covers(polygon)
        for other in polygons[i + 1 :]:
            assert polygon.intersection(other).area == pytest.approx(0)


def test_readings_sorted_known_scanners_valid_rssi(scenario):
    serials = {s["serial"] for s in scenario.floor["scanners"]}
    ts = [r[0] for r in scenario.readings]
    assert ts == sorted(ts)
    assert {r[1] for r in scenario.readings} == serials
    assert all(-127 <= r[3] < 0 for r in scenario.readings)


def test_tag_ids_are_canonical(scenario):
    tags = {r[2] for r in scenario.readings} | {t[1] for t in scenario.truth}
    tags |= {a["tag"] for a in scenario.site["assets"]}
    assert tags
    assert all(canonical_tag_id(tag) == tag for tag in tags)
    assert {r[2] for r in scenario.readings} == {a["tag"] for a in scenario.site["assets"]}


def test_truth_overlaps_readings_in_every_run(scenario):
    floor_name = scenario.floor["name"]
    zones = {z["name"] for z in scenario.floor["zones"]} | {""}
    assert all(t[2] == floor_name and t[5] in zones for t in scenario.truth)
    for seg in scenario.segments:
        r_ts = [r[0] for r in scenario.readings if r[2] == seg.tag and seg.start <= r[0] <= seg.end]
        t_ts = [t[0] for t in scenario.truth if t[1] == seg.tag and seg.start <= t[0] <= seg.end]
        assert r_ts, seg
        assert t_ts, seg
        overlap = min(r_ts[-1], t_ts[-1]) - max(r_ts[0], t_ts[0])
        assert overlap >= 0.9 * (seg.end - seg.start), seg
    per_tag: dict[str, list[rd.Segment]] = {}
    for seg in scenario.segments:
        per_tag.setdefault(seg.tag, []).append(seg)
    for runs in per_tag.values():
        runs.sort(key=lambda s: s.start)
        assert all(a.end < b.start for a, b in itertools.pairwise(runs))


def test_danis_matches_the_published_description(data_root):
    scenario = rd.load(rd.DANIS, data_root)
    assert len(scenario.floor["scanners"]) == 12
    assert len(scenario.segments) == 9
    assert len(scenario.truth) == 16018
    assert scenario.dropped == {"rssi out of range": 2}
    assert scenario.has_xy_truth
    floor = Polygon(scenario.floor["zones"][0]["polygon"])
    inside = sum(floor.covers(Point(t[3], t[4])) for t in scenario.truth)
    assert inside / len(scenario.truth) > 0.98
    assert 1.7 < scenario.tag_height_m < 1.9


def test_sal_matches_the_published_description(data_root):
    scenario = rd.load(rd.SAL, data_root)
    assert len(scenario.floor["scanners"]) == 10
    assert len(scenario.segments) == 10
    assert len(scenario.truth) == 21091
    assert not scenario.has_xy_truth
    assert {t[5] for t in scenario.truth} == {rd.SAL_CHAMBER, rd.SAL_HALL}
    serial_zone = {}
    for s in scenario.floor["scanners"]:
        zone = next(
            z["name"]
            for z in scenario.floor["zones"]
            if Polygon(z["polygon"]).covers(Point(s["x"], s["y"]))
        )
        serial_zone[s["serial"]] = zone
    assert all(
        (zone == rd.SAL_CHAMBER) == serial.startswith("sal-i-")
        for serial, zone in serial_zone.items()
    )


def test_real_segment_subset_and_trace_csv(data_root, tmp_path):
    scenario = rd.load(rd.DANIS, data_root, segments=["straight_04"])
    assert [s.name for s in scenario.segments] == ["straight_04"]
    assert (
        rd.write_trace_csv(scenario.readings, tmp_path / "t.csv") == len(scenario.readings) == 558
    )
    with open(tmp_path / "t.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[1][0].endswith("Z")
    assert rows[1][1].startswith("tetam-sensor")
