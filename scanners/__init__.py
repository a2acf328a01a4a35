"""Wardwise scanner agent: BLE/RFID gateway software with store-and-forward upload.

Deliberately free of Django so it installs on small gateways with nothing but the standard
library (plus bleak when BLE scanning is enabled).
"""

__version__ = "0.1.0"
