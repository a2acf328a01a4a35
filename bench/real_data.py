"""Real recorded BLE RSSI datasets, converted to Wardwise's site document and trace formats.

Synthetic floors only tell us how the engine copes with the radio model we wrote ourselves; these
published recordings tell us how it copes with real radio. The data stay where they are shared
(``../shared/data`` beside the repository, or ``$WARDWISE_SHARED_DATA``) and are read at run time,
never copied into the repository.

Datasets (see docs/real-data.md for the details and the licences):

- ``danis-position-annotated-ble-rssi``: 12 fixed BLE receivers in an open-plan office log one
  moving beacon; every packet carries the beacon's camera-measured position (x, y truth).
- ``sal-autarkic-rssi-ble``: 10 fixed BLE sniffers inside and outside a car test chamber log a
  moving node at 10 Hz; photosensors label each frame inside or outside (zone truth only).

``python -m bench.real_data --report`` prints the reference figures quoted in docs/real-data.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
import tarfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT_ENV = "WARDWISE_SHARED_DATA"
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"

DANIS = "danis-position-annotated-ble-rssi"
SAL = "sal-autarkic-rssi-ble"

# Anything at or above 0 dBm is a logging fault (a BLE receiver metres away cannot see that much
# power); both datasets contain a few such values and they would wreck any range estimate.
RSSI_VALID = (-127.0, 0.0)

Reading = tuple[float, str, str, float]
"""(ts epoch seconds, scanner serial, canonical tag id, rssi dBm)"""
Truth = tuple[float, str, str, float, float, str]
"""(ts epoch seconds, canonical tag id, floor name, x m, y m, zone name or "")"""


@dataclass(frozen=True)
class Segment:
    """One recorded run; runs of the same tag never overlap in time."""

    name: str
    tag: str
    start: float
    end: float


@dataclass
class RealScenario:
    """A dataset in Wardwise's terms: a site document, a trace and the ground truth."""

    name: str
    site: dict[str, Any]
    readings: list[Reading]
    truth: list[Truth]
    segments: list[Segment]
    notes: str
    licence: str
    attribution: str
    dropped: dict[str, int] = field(default_factory=dict)
    tag_height_m: float | None = None

    @property
    def floor(self) -> dict[str, Any]:
        return self.site["buildings"][0]["floors"][0]

    @property
    def has_xy_truth(self) -> bool:
        """False where the dataset labels zones only (x and y are NaN in `truth`)."""
        return any(not math.isnan(row[3]) for row in self.truth)


def canonical_mac(raw: str) -> str:
    """``mac:AA:BB:CC:DD:EE:FF`` from a MAC with or without separators."""
    digits = re.sub(r"[^0-9a-fA-F]", "", raw)
    if len(digits) != 12 or len(digits) != len(raw.replace(":", "").replace("-", "")):
        raise ValueError(f"not a MAC address: {raw!r}")
    pairs = [digits[i : i + 2].upper() for i in range(0, 12, 2)]
    return "mac:" + ":".join(pairs)


def rssi_is_valid(rssi: float) -> bool:
    return RSSI_VALID[0] <= rssi < RSSI_VALID[1]


def resolve_data_root(data_root: Path | str | None = None) -> Path:
    """Explicit argument, else ``$WARDWISE_SHARED_DATA``, else ``../shared/data`` from the repo."""
    if data_root is not None:
        return Path(data_root)
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env) if env else DEFAULT_DATA_ROOT


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    x0, y0, x1, y1 = (float(v) for v in (x0, y0, x1, y1))
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def _in_rect(polygon: list[list[float]], x: float, y: float) -> bool:
    xs = [p[0] for p in polygon]
    ys = [p[1] for p in polygon]
    return min(xs) <= x <= max(xs) and min(ys) <= y <= max(ys)


# --------------------------------------------------------------------------------------------
# Daniş et al., position-annotated BLE RSSI dataset (CC0)
# --------------------------------------------------------------------------------------------

DANIS_FLOOR = "tetam"
DANIS_ZONE = "Open-plan office"
# Fitted by `python -m bench.real_data --report` on the stationary calibration sets
# (hst_raw_mbd.tar.xz, recorded months before the tracks), never on the tracks themselves.
DANIS_NOMINAL_RSSI_AT_1M = -61.7
DANIS_NOMINAL_PATH_LOSS_EXPONENT = 1.46

DANIS_ATTRIBUTION = (
    "Position-Annotated BLE RSSI Dataset by F. Serhan Daniş, A. Teoman Naskali, A. Taylan Cemgil "
    "and Cem Ersoy (https://github.com/philotuxo/Position-Annotated-BLE-RSSI-Dataset, commit "
    "77474b69). Cite: Daniş et al., 'An Indoor Localization Dataset and Data Collection Framework"
    " with High Precision Position Annotation', Pervasive and Mobile Computing 81 (2022); Daniş, "
    "Cemgil, Ersoy, 'Adaptive Sequential Monte Carlo Filter for Indoor Positioning and Tracking "
    "with BLE Beacons', IEEE Access 9 (2021)."
)
DANIS_LICENCE = "CC0 1.0 Universal (public domain dedication); the authors ask to be cited."
DANIS_NOTES = (
    "Open-plan office 'tetam' (20.66 m x 17.64 m, desk clusters, no interior walls), one floor, "
    "one zone. 12 fixed receivers (4 Raspberry Pi at z=1.22 m, 8 USB dongles at z=2.30 m) log the"
    " advertisements of one moving BLE beacon: the fixed side receives, so each receiver is a "
    "Wardwise scanner and the beacon is the tag, exactly as in a hospital install. Scanner "
    "serials are 'tetam-<alias>' (the aliases of cnf/tetam.dev). Each packet row carries the "
    "beacon pose measured by the authors' camera/ArUco-marker system at that packet's time, so "
    "truth has one row per packet. Coordinates are the dataset's own metric frame (origin at a "
    "corner of the hall); straight_03 runs past the area limits at y=0 and y=17.64, so a few "
    "truth points lie up to 0.33 m outside the hall and have an empty zone. Timestamps are the "
    "real Unix times (Feb 2020); the nine tracks are separate walks of the same beacon, minutes "
    "apart, listed in `segments`. Readings at or above 0 dBm are logging faults and are dropped "
    "(counted in `dropped`)."
)


def parse_danis_devices(text: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Parse ``cnf/tetam.dev``: ``Section:{json}`` lines -> {section: {mac: {alias, pos}}}."""
    sections: dict[str, dict[str, dict[str, Any]]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        section, _, body = line.partition(":")
        entries = json.loads(body)
        sections[section.strip()] = {
            mac.lower(): {"alias": value[2], "pos": tuple(float(c) for c in value[0])}
            for mac, value in entries.items()
        }
    return sections


def parse_danis_limits(text: str) -> tuple[float, float, float, float]:
    """Area limits (x0, y0, x1, y1) in metres from ``cnf/tetam.par``."""
    x0, y0, x1, y1 = json.loads(text)["limits"]
    return float(x0), float(y0), float(x1), float(y1)


def parse_danis_track(
    lines: Iterable[str],
) -> list[tuple[float, str, str, float, float, float, float]]:
    """Rows of a ``trk/*.mbd`` file: (ts, sensor mac, beacon mac, rssi, gt x, gt y, gt z)."""
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cols = line.strip().split(",")
        if len(cols) != 16:
            raise ValueError(f"line {number}: expected 16 columns, got {len(cols)}")
        ts, sensor, beacon, rssi, x, y, z = cols[:7]
        rows.append(
            (float(ts), sensor.lower(), beacon.lower(), float(rssi), float(x), float(y), float(z))
        )
    return rows


def parse_danis_stationary_name(name: str) -> tuple[str, tuple[float, float, float]]:
    """``.../sensor12_0.16_6.57_1.85.mbd`` -> ('sensor12', beacon position (0.16, 6.57, 1.85))."""
    match = re.fullmatch(r"(sensor\d+)_(-?[\d.]+)_(-?[\d.]+)_(-?[\d.]+)\.mbd", Path(name).name)
    if not match:
        raise ValueError(f"not a stationary recording name: {name!r}")
    alias, x, y, z = match.groups()
    return alias, (float(x), float(y), float(z))


def danis_track_names(root: Path) -> list[str]:
    return sorted(
        p.name.removesuffix("_all_sensors.mbd") for p in root.glob("trk/*_all_sensors.mbd")
    )


def load_danis(root: Path, segments: Sequence[str] | None = None) -> RealScenario:
    devices = parse_danis_devices((root / "cnf" / "tetam.dev").read_text())
    x0, y0, x1, y1 = parse_danis_limits((root / "cnf" / "tetam.par").read_text())
    width, height = round(x1 - x0, 3), round(y1 - y0, 3)
    zone_polygon = _rect(0.0, 0.0, width, height)
    serial_of = {mac: f"tetam-{dev['alias']}" for mac, dev in devices["Dongles"].items()}
    scanners = [
        {
            "serial": serial_of[mac],
            "kind": "ble",
            "x": dev["pos"][0],
            "y": dev["pos"][1],
            "z": dev["pos"][2],
            "rssi_at_1m": DANIS_NOMINAL_RSSI_AT_1M,
            "path_loss_exponent": DANIS_NOMINAL_PATH_LOSS_EXPONENT,
        }
        for mac, dev in sorted(devices["Dongles"].items(), key=lambda kv: kv[1]["alias"])
    ]
    beacons = devices["Beacons"]
    wanted = list(segments) if segments else danis_track_names(root)
    unknown = set(wanted) - set(danis_track_names(root))
    if unknown:
        raise ValueError(f"unknown {DANIS} tracks: {sorted(unknown)}")

    readings: list[Reading] = []
    truth: list[Truth] = []
    runs: list[Segment] = []
    dropped: Counter[str] = Counter()
    heights: list[float] = []
    for track in wanted:
        with open(root / "trk" / f"{track}_all_sensors.mbd") as fh:
            rows = parse_danis_track(fh)
        tags = set()
        for ts, sensor, beacon, rssi, x, y, z in rows:
            tag = canonical_mac(beacon)
            if beacon not in beacons:
                dropped["unknown beacon"] += 1
                continue
            tags.add(tag)
            zone = DANIS_ZONE if _in_rect(zone_polygon, x, y) else ""
            truth.append((ts, tag, DANIS_FLOOR, x, y, zone))
            heights.append(z)
            if sensor not in serial_of:
                dropped["unknown receiver"] += 1
            elif not rssi_is_valid(rssi):
                dropped["rssi out of range"] += 1
            else:
                readings.append((ts, serial_of[sensor], tag, rssi))
        times = [r[0] for r in rows]
        for tag in sorted(tags):
            runs.append(Segment(track, tag, min(times), max(times)))

    readings.sort(key=lambda r: (r[0], r[1]))
    truth.sort(key=lambda r: r[0])
    runs.sort(key=lambda s: s.start)
    site = {
        "name": "Danis et al. BLE dataset: tetam open-plan office",
        "buildings": [
            {
                "name": "tetam",
                "floors": [
                    {
                        "name": DANIS_FLOOR,
                        "level": 0,
                        "width_m": width,
                        "height_m": height,
                        "zones": [{"name": DANIS_ZONE, "kind": "room", "polygon": zone_polygon}],
                        "scanners": scanners,
                    }
                ],
            }
        ],
        "assets": [
            {"name": f"Danis {b['alias']}", "type": "ble-beacon", "tag": canonical_mac(mac)}
            for mac, b in sorted(beacons.items())
        ],
    }
    return RealScenario(
        name=DANIS,
        site=site,
        readings=readings,
        truth=truth,
        segments=runs,
        notes=DANIS_NOTES,
        licence=DANIS_LICENCE,
        attribution=DANIS_ATTRIBUTION,
        dropped=dict(dropped),
        tag_height_m=float(np.median(heights)) if heights else None,
    )


def iter_danis_stationary(
    root: Path,
) -> Iterable[tuple[str, str, tuple[float, float, float], np.ndarray]]:
    """(set, sensor alias, beacon position, rssi array) per file of ``hst_raw_mbd.tar.xz``."""
    with tarfile.open(root / "hst_raw_mbd.tar.xz") as archive:
        for member in archive:
            if not member.isfile() or not member.name.endswith(".mbd"):
                continue
            alias, position = parse_danis_stationary_name(member.name)
            handle = archive.extractfile(member)
            if handle is None:
                continue
            lines = handle.read().splitlines()
            rssi = np.array([line.rsplit(b",", 1)[1] for line in lines if line], dtype=float)
            yield Path(member.name).parent.name, alias, position, rssi


# --------------------------------------------------------------------------------------------
# Silicon Austria Labs, autarkic localization RSSI BLE dataset (CC BY 4.0)
# --------------------------------------------------------------------------------------------

SAL_FLOOR = "Test bed"
SAL_CHAMBER = "Chamber"
SAL_HALL = "Hall"
# The dataset frame has its origin at the chamber door, x < 0 inside the chamber. Wardwise wants
# the origin at a floor corner, so every coordinate is shifted by this offset.
SAL_OFFSET = (14.0, 2.0)
SAL_FLOOR_SIZE = (26.0, 7.0)
SAL_DOOR_X = 0.0
SAL_FRAME_S = 0.1
SAL_MISSING = -100.0
# The recordings carry superframe numbers only; runs are laid end to end from this synthetic start
# (2020-10-01T00:00:00Z, the month the dataset was published), with a gap so trackers reset.
SAL_EPOCH = 1601510400.0
SAL_RUN_GAP_S = 300.0
SAL_TAG_UUID = uuid.uuid5(
    uuid.NAMESPACE_URL,
    "https://github.com/juliankaroliny/SAL-Autarkic-Localization-RSSI-BLE-Dataset",
)
SAL_NOMINAL_RSSI_AT_1M = -59.0
SAL_NOMINAL_PATH_LOSS_EXPONENT = 2.0
SAL_ASSUMED_TAG_HEIGHT_M = 1.0

SAL_ATTRIBUTION = (
    "SAL-Autarkic-Localization-RSSI-BLE-Dataset by Julian Karoliny et al., Silicon Austria Labs, "
    "measured at AVL List GmbH, Graz (https://github.com/juliankaroliny/SAL-Autarkic-"
    "Localization-RSSI-BLE-Dataset, commit 440a5bcf, archived on Zenodo). Related paper: T. "
    "Blazek, J. Karoliny, F. Ademaj, H.-P. Bernhard, 'RSSI-Based Location Classification Using a "
    "Particle Filter to Fuse Sensor Estimates', arXiv:2104.14874 (2021). Converted to Wardwise "
    "formats (coordinates shifted, synthetic timestamps and tag ids, missing links dropped)."
)
SAL_LICENCE = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/): attribution required."
SAL_NOTES = (
    "Automotive test chamber with an outside hall. 10 fixed sniffer nodes (nRF52840 dongles), 6 "
    "in the chamber and 4 outside, overhear the packets a moving measurement node (MN) sends to "
    "its base station every 100 ms superframe (TDMA protocol EPhESOS): the fixed side receives, "
    "so each sniffer is a Wardwise scanner ('sal-<label>', lower case) and the MN is the tag. Two"
    " MNs: MN 1 (car runs 1-5 and both walk runs) and MN 2 (car runs 1-3), as synthetic tags "
    "ibeacon:<uuid5 of the repo URL>:1:<MN>. Truth is zone only, from photosensors at the door "
    "and at the test position: label 0 -> 'Hall', 1 and 2 (2 = parked on the test position, car "
    "runs only) -> 'Chamber'; x and y are NaN. The dataset frame (origin at the door, x < 0 "
    "inside) is shifted by (+14, +2) m; the chamber/hall boundary is put at the door (x=0 in the "
    "dataset frame), the published floor plan is schematic so the 26 m x 7 m floor and the zone "
    "extents in y are assumptions that cover every sniffer and the driving lane. Timestamps are "
    "synthetic: superframe x 0.1 s, runs laid end to end from 2020-10-01T00:00:00Z with 300 s "
    "gaps. RSSI -100 marks a missing link and is not a reading. measurement_config.txt gives I-T3"
    " x=-2.00 m, the published table x=-1.60 m; the config file is used."
)


def parse_sal_config(text: str) -> dict[str, dict[str, Any]]:
    """``measurement_config.txt`` -> {label: {description, pos (x, y, z)}}, dataset frame."""
    sniffers: dict[str, dict[str, Any]] = {}
    rows = [row for row in csv.reader(text.splitlines()) if row and any(c.strip() for c in row)]
    header = [c.strip().lower() for c in rows[0]]
    if header != ["label", "description", "x", "y", "z"]:
        raise ValueError(f"unexpected sniffer config header: {rows[0]}")
    for row in rows[1:]:
        label, description, x, y, z = (c.strip() for c in row)
        sniffers[label] = {"description": description, "pos": (float(x), float(y), float(z))}
    return sniffers


@dataclass(frozen=True)
class SalRun:
    """One parsed run file: sniffer labels, then per superframe the RSSI row and the label."""

    sniffers: tuple[str, ...]
    frames: tuple[int, ...]
    rssi: tuple[tuple[float, ...], ...]
    labels: tuple[int, ...]


def parse_sal_run(text: str) -> SalRun:
    rows = list(csv.reader(text.splitlines()))
    header = rows[0]
    if header[0] != "superframe" or "Label" not in header:
        raise ValueError(f"unexpected run header: {header}")
    label_col = header.index("Label")
    frames, rssi, labels = [], [], []
    for row in rows[1:]:
        if not row:
            continue
        frames.append(int(row[0]))
        rssi.append(tuple(float(v) for v in row[1:label_col]))
        labels.append(int(row[label_col]))
    return SalRun(tuple(header[1:label_col]), tuple(frames), tuple(rssi), tuple(labels))


def parse_sal_run_name(name: str) -> tuple[str, int, int]:
    """``car_sensor_2_measurement_3.csv`` -> ('car', MN 2, run 3)."""
    match = re.fullmatch(r"(car|walk)_sensor_(\d+)_measurement_(\d+)\.csv", Path(name).name)
    if not match:
        raise ValueError(f"not a run file name: {name!r}")
    return match.group(1), int(match.group(2)), int(match.group(3))


def sal_tag(mn: int) -> str:
    return f"ibeacon:{SAL_TAG_UUID}:1:{mn}"


def sal_serial(label: str) -> str:
    return f"sal-{label.lower()}"


def sal_site(sniffers: dict[str, dict[str, Any]], mns: Iterable[int]) -> dict[str, Any]:
    ox, oy = SAL_OFFSET
    width, height = SAL_FLOOR_SIZE
    door = SAL_DOOR_X + ox
    scanners = [
        {
            "serial": sal_serial(label),
            "kind": "ble",
            "x": round(s["pos"][0] + ox, 3),
            "y": round(s["pos"][1] + oy, 3),
            "z": s["pos"][2],
            "rssi_at_1m": SAL_NOMINAL_RSSI_AT_1M,
            "path_loss_exponent": SAL_NOMINAL_PATH_LOSS_EXPONENT,
        }
        for label, s in sniffers.items()
    ]
    return {
        "name": "SAL autarkic localization test bed (AVL List, Graz)",
        "buildings": [
            {
                "name": "AVL test bed",
                "floors": [
                    {
                        "name": SAL_FLOOR,
                        "level": 0,
                        "width_m": width,
                        "height_m": height,
                        "zones": [
                            {
                                "name": SAL_CHAMBER,
                                "kind": "room",
                                "polygon": _rect(0, 0, door, height),
                            },
                            {
                                "name": SAL_HALL,
                                "kind": "corridor",
                                "polygon": _rect(door, 0, width, height),
                            },
                        ],
                        "scanners": scanners,
                    }
                ],
            }
        ],
        "assets": [
            {"name": f"SAL measurement node {mn}", "type": "ble-node", "tag": sal_tag(mn)}
            for mn in sorted(set(mns))
        ],
    }


def sal_run_names(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "Dataset").glob("*.csv"))


def load_sal(root: Path, segments: Sequence[str] | None = None) -> RealScenario:
    sniffers = parse_sal_config((root / "measurement_config.txt").read_text())
    wanted = list(segments) if segments else sal_run_names(root)
    unknown = set(wanted) - set(sal_run_names(root))
    if unknown:
        raise ValueError(f"unknown {SAL} runs: {sorted(unknown)}")

    readings: list[Reading] = []
    truth: list[Truth] = []
    runs: list[Segment] = []
    dropped: Counter[str] = Counter()
    mns = []
    start = SAL_EPOCH
    for run_name in wanted:
        _, mn, _ = parse_sal_run_name(run_name + ".csv")
        mns.append(mn)
        tag = sal_tag(mn)
        run = parse_sal_run((root / "Dataset" / f"{run_name}.csv").read_text())
        missing = set(run.sniffers) - set(sniffers)
        if missing:
            raise ValueError(
                f"{run_name}: sniffers {sorted(missing)} not in measurement_config.txt"
            )
        serials = [sal_serial(label) for label in run.sniffers]
        for frame, values, label in zip(run.frames, run.rssi, run.labels, strict=True):
            ts = round(start + frame * SAL_FRAME_S, 3)
            truth.append(
                (ts, tag, SAL_FLOOR, math.nan, math.nan, SAL_HALL if label == 0 else SAL_CHAMBER)
            )
            for serial, rssi in zip(serials, values, strict=True):
                if rssi == SAL_MISSING:
                    dropped["missing link (-100)"] += 1
                elif not rssi_is_valid(rssi):
                    dropped["rssi out of range"] += 1
                else:
                    readings.append((ts, serial, tag, rssi))
        end = round(start + max(run.frames) * SAL_FRAME_S, 3)
        runs.append(Segment(run_name, tag, start, end))
        start = math.ceil(end + SAL_RUN_GAP_S)

    readings.sort(key=lambda r: (r[0], r[1]))
    truth.sort(key=lambda r: r[0])
    return RealScenario(
        name=SAL,
        site=sal_site(sniffers, mns),
        readings=readings,
        truth=truth,
        segments=runs,
        notes=SAL_NOTES,
        licence=SAL_LICENCE,
        attribution=SAL_ATTRIBUTION,
        dropped=dict(dropped),
        tag_height_m=None,
    )


# --------------------------------------------------------------------------------------------
# Registry and public entry points
# --------------------------------------------------------------------------------------------

_LOADERS: dict[str, Callable[[Path, Sequence[str] | None], RealScenario]] = {
    DANIS: load_danis,
    SAL: load_sal,
}
# A file each dataset cannot do without: tells a present dataset from an empty directory.
_MARKERS = {DANIS: Path("cnf/tetam.dev"), SAL: Path("measurement_config.txt")}


def available_datasets(data_root: Path | str | None = None) -> list[str]:
    """Names of the datasets this module knows that are present under the data root."""
    root = resolve_data_root(data_root)
    return [name for name in _LOADERS if (root / name / _MARKERS[name]).is_file()]


def load(
    name: str, data_root: Path | str | None = None, *, segments: Sequence[str] | None = None
) -> RealScenario:
    """Convert dataset `name`; `segments` restricts it to some tracks/runs (all by default)."""
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(_LOADERS)}")
    root = resolve_data_root(data_root) / name
    if not (root / _MARKERS[name]).is_file():
        raise FileNotFoundError(
            f"dataset {name!r} not found at {root} "
            f"(set {DATA_ROOT_ENV} to the shared data directory)"
        )
    return _LOADERS[name](root, segments)


def segment_names(name: str, data_root: Path | str | None = None) -> list[str]:
    root = resolve_data_root(data_root) / name
    return danis_track_names(root) if name == DANIS else sal_run_names(root)


def format_ts(ts: float, ts_format: str = "iso") -> str:
    """Contract section 2 time: ISO 8601 UTC with milliseconds, or epoch seconds (µs kept)."""
    if ts_format == "epoch":
        return f"{ts:.6f}"
    if ts_format != "iso":
        raise ValueError(f"ts_format must be 'iso' or 'epoch', not {ts_format!r}")
    millis = round(ts * 1000)
    moment = datetime.fromtimestamp(millis // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis % 1000:03d}Z"


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:g}"


def write_trace_csv(readings: Iterable[Reading], path: Path | str, ts_format: str = "iso") -> int:
    """Write a contract section-2 trace (ts, scanner, tag, rssi); returns the row count."""
    count = 0
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ts", "scanner", "tag", "rssi"])
        for ts, scanner, tag, rssi in readings:
            writer.writerow([format_ts(ts, ts_format), scanner, tag, _number(rssi)])
            count += 1
    return count


def write_truth_csv(truth: Iterable[Truth], path: Path | str, ts_format: str = "iso") -> int:
    """Truth in the ESTIMATES.csv layout (ts, tag, floor, x, y, zone) so both read alike."""
    count = 0
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ts", "tag", "floor", "x", "y", "zone"])
        for ts, tag, floor, x, y, zone in truth:
            writer.writerow([format_ts(ts, ts_format), tag, floor, _number(x), _number(y), zone])
            count += 1
    return count


def write_site_json(site: dict[str, Any], path: Path | str) -> None:
    Path(path).write_text(json.dumps(site, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------------------------
# Reference figures
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogDistanceFit:
    """RSSI = rssi_at_1m - 10 n log10(d) + N(0, sigma²), fitted by least squares."""

    rssi_at_1m: float
    path_loss_exponent: float
    sigma_db: float
    count: int
    d_min: float
    d_max: float


def fit_log_distance(rssi: np.ndarray, distance: np.ndarray) -> LogDistanceFit:
    rssi = np.asarray(rssi, dtype=float)
    distance = np.asarray(distance, dtype=float)
    log_d = np.log10(distance)
    slope, intercept = np.polyfit(log_d, rssi, 1)
    residual = rssi - (intercept + slope * log_d)
    return LogDistanceFit(
        rssi_at_1m=float(intercept),
        path_loss_exponent=float(-slope / 10.0),
        sigma_db=float(residual.std(ddof=2)),
        count=int(rssi.size),
        d_min=float(distance.min()),
        d_max=float(distance.max()),
    )


@dataclass(frozen=True)
class _Anchors:
    serials: list[str]
    xyz: np.ndarray
    rssi_at_1m: np.ndarray
    exponent: np.ndarray
    size: tuple[float, float]

    @classmethod
    def from_floor(cls, floor: dict[str, Any]) -> _Anchors:
        scanners = floor["scanners"]
        return cls(
            serials=[s["serial"] for s in scanners],
            xyz=np.array([[s["x"], s["y"], s.get("z", 0.0)] for s in scanners]),
            rssi_at_1m=np.array([s["rssi_at_1m"] for s in scanners]),
            exponent=np.array([s["path_loss_exponent"] for s in scanners]),
            size=(floor["width_m"], floor["height_m"]),
        )


def window_rssi(
    readings: Sequence[Reading], serials: Sequence[str], times: np.ndarray, window_s: float
) -> np.ndarray:
    """Mean RSSI per scanner over (t - window, t] for each t; NaN where a scanner heard nothing."""
    index = {s: i for i, s in enumerate(serials)}
    ts = np.array([r[0] for r in readings])
    sid = np.array([index[r[1]] for r in readings], dtype=int)
    rssi = np.array([r[3] for r in readings])
    out = np.full((len(times), len(serials)), np.nan)
    lo = np.searchsorted(ts, times - window_s, side="right")
    hi = np.searchsorted(ts, times, side="right")
    for row, (a, b) in enumerate(zip(lo, hi, strict=True)):
        if b > a:
            counts = np.bincount(sid[a:b], minlength=len(serials))
            sums = np.bincount(sid[a:b], weights=rssi[a:b], minlength=len(serials))
            with np.errstate(invalid="ignore", divide="ignore"):
                out[row] = np.where(counts > 0, sums / counts, np.nan)
    return out


def trilaterate(
    anchors_xyz: np.ndarray,
    ranges: np.ndarray,
    start: np.ndarray,
    size: tuple[float, float],
    tag_height: float,
    iterations: int = 50,
) -> np.ndarray:
    """Equal-weight least squares on 3-D ranges, batched over rows, bounded by the floor.

    Gauss-Newton with an active set (a coordinate on a wall that the gradient pushes outwards
    stays there) and a backtracking step, so every step lowers the cost; NaN ranges are ignored.
    Batched because scipy per row took a minute on SAL's 21,000 frames; the tests compare the
    two on noisy ranges.
    """
    used = ~np.isnan(ranges)
    target = np.where(used, ranges, 0.0)
    dz2 = (anchors_xyz[:, 2] - tag_height) ** 2
    upper = np.array(size, dtype=float)
    eye = np.eye(2)

    def cost_and_parts(p):
        delta = p[:, None, :] - anchors_xyz[None, :, :2]
        dist = np.sqrt((delta**2).sum(axis=2) + dz2)
        residual = np.where(used, dist - target, 0.0)
        return (residual**2).sum(axis=1), delta, dist, residual

    p = np.clip(start, 0.0, upper)
    cost, delta, dist, residual = cost_and_parts(p)
    for _ in range(iterations):
        jac = np.where(used[:, :, None], delta / np.maximum(dist, 1e-9)[:, :, None], 0.0)
        grad = np.einsum("nki,nk->ni", jac, residual)
        active = ((p <= 0.0) & (grad > 0)) | ((p >= upper) & (grad < 0))
        jtj = np.einsum("nki,nkj->nij", jac, jac) + 1e-9 * eye
        keep = (~active)[:, :, None] & (~active)[:, None, :]
        jtj = np.where(keep, jtj, 0.0) + np.where(active[:, :, None], eye, 0.0)
        step = -np.linalg.solve(jtj, np.where(active, 0.0, grad)[:, :, None])[:, :, 0]
        best_p, best_cost = p, cost
        for alpha in (1.0, 0.5, 0.25, 0.1, 0.03):
            trial = np.clip(p + alpha * step, 0.0, upper)
            trial_cost = cost_and_parts(trial)[0]
            better = trial_cost < best_cost
            best_p = np.where(better[:, None], trial, best_p)
            best_cost = np.where(better, trial_cost, best_cost)
        if np.allclose(best_p, p, atol=1e-6):
            break
        p = best_p
        cost, delta, dist, residual = cost_and_parts(p)
    return p


def estimate_simple(
    anchors: _Anchors, rssi: np.ndarray, tag_height: float
) -> dict[str, np.ndarray]:
    """Strongest anchor, weighted centroid and equal-weight LS trilateration, per row of `rssi`.

    Ranges come from each anchor's nominal log-distance model; the centroid weights are the
    inverse ranges. Rows with fewer than 3 anchors heard keep the centroid as their lateration.
    """
    heard = ~np.isnan(rssi)
    filled = np.where(heard, rssi, -np.inf)
    strongest = anchors.xyz[np.argmax(filled, axis=1), :2]
    ranges = 10 ** ((anchors.rssi_at_1m - rssi) / (10 * anchors.exponent))
    weights = np.where(heard, 1.0 / ranges, 0.0)
    centroid = (weights @ anchors.xyz[:, :2]) / weights.sum(axis=1, keepdims=True)
    lateration = trilaterate(anchors.xyz, ranges, centroid, anchors.size, tag_height)
    lateration = np.where((heard.sum(axis=1) >= 3)[:, None], lateration, centroid)
    return {
        "strongest anchor": strongest,
        "weighted centroid": centroid,
        "LS trilateration": lateration,
    }


def _error_stats(errors: np.ndarray) -> dict[str, float]:
    return {
        "median": float(np.median(errors)),
        "mean": float(errors.mean()),
        "rmse": float(np.sqrt((errors**2).mean())),
        "p90": float(np.percentile(errors, 90)),
        "<1m": float((errors < 1).mean()),
        "<2m": float((errors < 2).mean()),
        "<3m": float((errors < 3).mean()),
    }


def danis_reference(
    scenario: RealScenario, window_s: float = 2.0, step_s: float = 0.5
) -> dict[str, dict[str, float]]:
    """2-D error of the simple estimators, every `step_s` over `window_s` of readings."""
    anchors = _Anchors.from_floor(scenario.floor)
    tag_height = scenario.tag_height_m or 1.8
    errors: dict[str, list[np.ndarray]] = {}
    for seg in scenario.segments:
        readings = [
            r for r in scenario.readings if r[2] == seg.tag and seg.start <= r[0] <= seg.end
        ]
        truth = np.array(
            [
                (t[0], t[3], t[4])
                for t in scenario.truth
                if t[1] == seg.tag and seg.start <= t[0] <= seg.end
            ]
        )
        times = np.arange(seg.start + window_s, seg.end, step_s)
        rssi = window_rssi(readings, anchors.serials, times, window_s)
        keep = ~np.isnan(rssi).all(axis=1)
        times, rssi = times[keep], rssi[keep]
        true_xy = np.column_stack(
            [np.interp(times, truth[:, 0], truth[:, 1]), np.interp(times, truth[:, 0], truth[:, 2])]
        )
        estimates = estimate_simple(anchors, rssi, tag_height)
        estimates["floor centre"] = np.tile(np.array(anchors.size) / 2, (len(times), 1))
        for method, xy in estimates.items():
            errors.setdefault(method, []).append(np.hypot(*(xy - true_xy).T))
    return {method: _error_stats(np.concatenate(e)) for method, e in errors.items()}


def danis_fits(scenario: RealScenario, root: Path) -> dict[str, Any]:
    """Log-distance fits: stationary calibration sets (per packet, per location) and the tracks."""
    devices = parse_danis_devices((root / "cnf" / "tetam.dev").read_text())
    sensor_pos = {d["alias"]: np.array(d["pos"]) for d in devices["Dongles"].values()}
    per_set: dict[str, tuple[list, list, list, list, list]] = {}
    for set_name, alias, beacon, rssi in iter_danis_stationary(root):
        valid = rssi[(rssi >= RSSI_VALID[0]) & (rssi < RSSI_VALID[1])]
        if valid.size == 0:
            continue
        d = float(np.linalg.norm(sensor_pos[alias] - np.array(beacon)))
        packets, dists, means, mean_d, aliases = per_set.setdefault(set_name, ([], [], [], [], []))
        packets.append(valid)
        dists.append(np.full(valid.size, d))
        means.append(valid.mean())
        mean_d.append(d)
        aliases.append(np.full(valid.size, alias))
    fits: dict[str, Any] = {}
    all_rssi, all_d = [], []
    for set_name in sorted(per_set):
        packets, dists, means, mean_d, _ = per_set[set_name]
        rssi, d = np.concatenate(packets), np.concatenate(dists)
        all_rssi.append(rssi)
        all_d.append(d)
        fits[f"stationary {set_name} (per packet)"] = fit_log_distance(rssi, d)
        fits[f"stationary {set_name} (per location mean)"] = fit_log_distance(
            np.array(means), np.array(mean_d)
        )
    rssi, d = np.concatenate(all_rssi), np.concatenate(all_d)
    fits["stationary set_1+set_2 (per packet)"] = fit_log_distance(rssi, d)
    aliases = np.concatenate([a for s in per_set.values() for a in s[4]])
    per_sensor = [
        fit_log_distance(rssi[aliases == a], d[aliases == a]) for a in sorted(set(aliases))
    ]

    anchors = _Anchors.from_floor(scenario.floor)
    position = {s: anchors.xyz[i] for i, s in enumerate(anchors.serials)}
    truth_ts = np.array([t[0] for t in scenario.truth])
    truth_xyz = np.array([(t[3], t[4], scenario.tag_height_m or 1.8) for t in scenario.truth])
    ts = np.array([r[0] for r in scenario.readings])
    # Truth has one row per packet at the packet's own time, so the nearest truth row is exact.
    nearest = np.clip(np.searchsorted(truth_ts, ts), 0, len(truth_ts) - 1)
    anchor_xyz = np.array([position[r[1]] for r in scenario.readings])
    track_d = np.linalg.norm(anchor_xyz - truth_xyz[nearest], axis=1)
    fits["tracks (per packet, truth x,y, median tag height)"] = fit_log_distance(
        np.array([r[3] for r in scenario.readings]), track_d
    )
    return {"fits": fits, "per_sensor": per_sensor}


def sal_reference(scenario: RealScenario) -> dict[str, dict[str, float]]:
    """Inside/outside hit rate per 100 ms frame; strongest sniffer is the README's baseline rule."""
    anchors = _Anchors.from_floor(scenario.floor)
    door = SAL_DOOR_X + SAL_OFFSET[0]
    hits: dict[str, dict[str, list[np.ndarray]]] = {}
    truth_zone = {(t[1], t[0]): t[5] for t in scenario.truth}
    for seg in scenario.segments:
        readings = [
            r for r in scenario.readings if r[2] == seg.tag and seg.start <= r[0] <= seg.end
        ]
        times = np.array(sorted({r[0] for r in readings}))
        rssi = window_rssi(readings, anchors.serials, times, SAL_FRAME_S / 2)
        inside_true = np.array([truth_zone[(seg.tag, t)] == SAL_CHAMBER for t in times])
        kind = seg.name.split("_", 1)[0]
        for method, xy in estimate_simple(anchors, rssi, SAL_ASSUMED_TAG_HEIGHT_M).items():
            per_kind = hits.setdefault(method, {})
            per_kind.setdefault(kind, []).append((xy[:, 0] < door) == inside_true)
            per_kind.setdefault("all", []).append((xy[:, 0] < door) == inside_true)
    return {
        method: {kind: float(np.concatenate(v).mean()) for kind, v in per_kind.items()}
        for method, per_kind in hits.items()
    }


def describe(scenario: RealScenario) -> dict[str, Any]:
    duration = sum(s.end - s.start for s in scenario.segments)
    per_scanner = Counter(r[1] for r in scenario.readings)
    return {
        "anchors": len(scenario.floor["scanners"]),
        "tags": sorted({r[2] for r in scenario.readings}),
        "segments": len(scenario.segments),
        "duration_s": duration,
        "readings": len(scenario.readings),
        "truth_rows": len(scenario.truth),
        "rate_per_scanner_hz": len(scenario.readings) / duration / max(len(per_scanner), 1),
        "dropped": scenario.dropped,
    }


def _range(values: Iterable[float], digits: int) -> str:
    values = list(values)
    return f"{min(values):.{digits}f} to {max(values):.{digits}f}"


def _danis_report(scenario: RealScenario, root: Path) -> list[str]:
    out = [
        "Log-distance fits, RSSI = A - 10 n log10(d), d = 3-D distance:",
        "",
        "| data | packets | d (m) | A = rssi_at_1m (dBm) | n | sigma (dB) |",
        "|---|---:|---|---:|---:|---:|",
    ]
    fitted = danis_fits(scenario, root)
    for label, fit in fitted["fits"].items():
        out.append(
            f"| {label} | {fit.count} | {fit.d_min:.2f}-{fit.d_max:.2f} | "
            f"{fit.rssi_at_1m:.1f} | {fit.path_loss_exponent:.2f} | {fit.sigma_db:.2f} |"
        )
    per_sensor = fitted["per_sensor"]
    out += [
        "",
        "Per receiver (stationary, per packet): "
        f"A {_range((f.rssi_at_1m for f in per_sensor), 1)} dBm, "
        f"n {_range((f.path_loss_exponent for f in per_sensor), 2)}, "
        f"sigma {_range((f.sigma_db for f in per_sensor), 1)} dB.",
        "",
        "2-D error (m), per-scanner mean RSSI over a 2 s window every 0.5 s, ranges from the "
        f"site's nominal A={DANIS_NOMINAL_RSSI_AT_1M}, n={DANIS_NOMINAL_PATH_LOSS_EXPONENT}, "
        f"tag height {scenario.tag_height_m:.2f} m:",
        "",
        "| method | median | mean | RMSE | p90 | <1 m | <2 m | <3 m |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method, s in danis_reference(scenario).items():
        out.append(
            f"| {method} | {s['median']:.2f} | {s['mean']:.2f} | {s['rmse']:.2f} | "
            f"{s['p90']:.2f} | {s['<1m']:.0%} | {s['<2m']:.0%} | {s['<3m']:.0%} |"
        )
    return out


def _sal_report(scenario: RealScenario) -> list[str]:
    out = [
        "Inside/outside hit rate per 100 ms frame (estimate's x against the door line), "
        f"nominal A={SAL_NOMINAL_RSSI_AT_1M}, n={SAL_NOMINAL_PATH_LOSS_EXPONENT}, "
        f"assumed tag height {SAL_ASSUMED_TAG_HEIGHT_M} m:",
        "",
        "| method | all | car runs | walk runs |",
        "|---|---:|---:|---:|",
    ]
    for method, r in sal_reference(scenario).items():
        out.append(f"| {method} | {r['all']:.1%} | {r['car']:.1%} | {r['walk']:.1%} |")
    out += ["", "No log-distance fit: the dataset has no positions, hence no distances to fit."]
    return out


def report(names: Sequence[str], data_root: Path | str | None = None) -> str:
    """Markdown with the reference figures of docs/real-data.md."""
    out: list[str] = []
    for name in names:
        scenario = load(name, data_root)
        info = describe(scenario)
        out += [
            f"### {name}",
            "",
            f"- {info['anchors']} anchors, {info['segments']} runs, {info['duration_s']:.0f} s, "
            f"{info['readings']} readings ({info['rate_per_scanner_hz']:.2f} Hz per scanner), "
            f"{info['truth_rows']} truth rows, tags {', '.join(info['tags'])}",
            f"- dropped: {json.dumps(info['dropped'], sort_keys=True)}",
            "",
        ]
        if name == DANIS:
            out += _danis_report(scenario, resolve_data_root(data_root) / name)
        else:
            out += _sal_report(scenario)
        out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.real_data",
        description="Convert a real BLE RSSI dataset to a Wardwise site, trace and truth.",
    )
    parser.add_argument("names", nargs="*", help="dataset name(s); see --list")
    parser.add_argument(
        "--data-root", type=Path, help=f"default ${DATA_ROOT_ENV} or ../shared/data"
    )
    parser.add_argument("--list", action="store_true", help="list the datasets found and exit")
    parser.add_argument(
        "--report", action="store_true", help="print the reference figures (Markdown)"
    )
    parser.add_argument("--segments", help="comma-separated tracks/runs (default: all)")
    parser.add_argument("--site", type=Path, help="write the site document (JSON) here")
    parser.add_argument("--trace", type=Path, help="write the trace CSV here")
    parser.add_argument("--truth", type=Path, help="write the truth CSV here")
    parser.add_argument("--epoch-ts", action="store_true", help="epoch seconds instead of ISO 8601")
    args = parser.parse_args(argv)

    if args.list:
        for name in available_datasets(args.data_root):
            print(f"{name}: {', '.join(segment_names(name, args.data_root))}")
        return 0
    if args.report:
        print(report(args.names or available_datasets(args.data_root), args.data_root))
        return 0
    if len(args.names) != 1 or not (args.site or args.trace or args.truth):
        parser.error("give one dataset name and at least one of --site, --trace, --truth")
    segments = args.segments.split(",") if args.segments else None
    scenario = load(args.names[0], args.data_root, segments=segments)
    ts_format = "epoch" if args.epoch_ts else "iso"
    if args.site:
        write_site_json(scenario.site, args.site)
    if args.trace:
        write_trace_csv(scenario.readings, args.trace, ts_format)
    if args.truth:
        write_truth_csv(scenario.truth, args.truth, ts_format)
    print(
        f"{scenario.name}: {len(scenario.readings)} readings, {len(scenario.truth)} truth rows, "
        f"{len(scenario.segments)} runs; dropped {json.dumps(scenario.dropped, sort_keys=True)}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
