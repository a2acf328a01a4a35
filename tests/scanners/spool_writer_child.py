"""Child process for the SIGKILL test: writes batches as fast as it can and reports each commit."""

import sys

from scanners.spool import Spool


def main() -> None:
    spool = Spool(sys.argv[1], max_bytes=512 * 1024 * 1024)
    sequence = 0
    while True:
        readings = [
            {"tag": f"mac:AA:BB:CC:DD:{sequence % 256:02X}:{i:02X}", "rssi": -60, "ts": "x" * 20}
            for i in range(50)
        ]
        batch_id = spool.put("rssi", readings, batch_id=f"batch-{sequence}")
        sys.stdout.write(batch_id + "\n")
        sys.stdout.flush()
        sequence += 1


if __name__ == "__main__":
    main()
