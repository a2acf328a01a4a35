"""Radio simulator for Wardwise: synthetic hospitals, tag motion and BLE RSSI traces.

Pure Python (numpy, no Django) so that the benchmark, the tests and the live demo driver share it.

- `layout.generate_hospital(...)` builds a contract section-1 site document (dict).
- `radio.RadioSimulator` moves tags and yields contract section-2 readings in event time, with the
  ground truth alongside; `radio.write_trace` writes both as CSV.
"""
