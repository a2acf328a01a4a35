"""`python manage.py replay TRACE.csv --out ESTIMATES.csv` (CONTRACT.md section 2)."""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from hospital.site_loader import export_site_document
from tracking.localization import EngineConfig, SiteSpec
from tracking.localization.replay import TraceFormatError, replay_file
from tracking.models import Tag


def site_from_database() -> SiteSpec:
    """The loaded site as the engine sees it, including each scanner's stored RSSI offset."""
    document = export_site_document()
    if not any(building.get("floors") for building in document.get("buildings", [])):
        raise CommandError("no site is loaded: run `python manage.py load_site FILE` first")
    return SiteSpec.from_document(document)


def mobility_by_tag() -> dict[str, str]:
    rows = Tag.objects.filter(asset__isnull=False).values_list(
        "tag_id", "asset__asset_type__mobility"
    )
    return dict(rows)


def count_rows(path: Path) -> int:
    with open(path, "rb") as handle:
        return max(
            sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1, 0
        )


class Command(BaseCommand):
    help = (
        "Replay a recorded trace (ts,scanner,tag,rssi) through the localization engine in event "
        "time against the loaded site and write every position update as ESTIMATES.csv."
    )

    def add_arguments(self, parser):
        parser.add_argument("trace", help="TRACE.csv, sorted by ts (CONTRACT.md section 2).")
        parser.add_argument(
            "--out", required=True, help="Where to write ESTIMATES.csv ('-' for stdout)."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        trace_path = Path(options["trace"])
        if not trace_path.is_file():
            raise CommandError(f"{trace_path}: no such file")
        site = site_from_database()
        config = EngineConfig(
            self_calibration=getattr(settings, "WARDWISE", {}).get("SELF_CALIBRATION", True)
        )
        mobility = mobility_by_tag()
        progress = tqdm(
            total=count_rows(trace_path),
            unit="rows",
            unit_scale=True,
            file=sys.stderr,
            disable=options["no_progress"],
            desc="replay",
        )
        out_path = options["out"]
        try:
            with open(trace_path, newline="", encoding="utf-8") as trace:
                if out_path == "-":
                    stats = self._replay(site, trace, self.stdout, config, mobility, progress)
                else:
                    with open(out_path, "w", newline="", encoding="utf-8") as out:
                        stats = self._replay(site, trace, out, config, mobility, progress)
        except TraceFormatError as exc:
            raise CommandError(f"{trace_path}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{trace_path}: not UTF-8 text ({exc.reason})") from exc
        finally:
            progress.close()
        self.stderr.write(stats.summary())
        if stats.bad_rows:
            self.stderr.write(
                f"{sum(stats.bad_rows.values())} rows could not be used; see the reasons above."
            )

    def _replay(self, site, trace, out, config, mobility, progress):
        return replay_file(
            site,
            trace,
            out,
            config=config,
            mobility_for_tag=mobility.get,
            on_progress=progress.update,
        )
