"""Site documents used by the site-file tests: the contract's own example, and builders."""

import copy

CONTRACT_EXAMPLE = {
    "name": "St. Example General",
    "buildings": [
        {
            "name": "Main",
            "floors": [
                {
                    "name": "Level 1",
                    "level": 1,
                    "width_m": 64.0,
                    "height_m": 27.0,
                    "zones": [
                        {
                            "name": "101",
                            "kind": "room",
                            "polygon": [[0, 0], [6.4, 0], [6.4, 12], [0, 12]],
                        }
                    ],
                    "scanners": [
                        {
                            "serial": "s1-101",
                            "kind": "ble",
                            "x": 3.2,
                            "y": 6.0,
                            "z": 2.6,
                            "rssi_at_1m": -59,
                            "path_loss_exponent": 2.0,
                        }
                    ],
                    "sensors": [
                        {
                            "serial": "fridge-101",
                            "kind": "refrigerator",
                            "zone": "101",
                            "profile": "vaccine-refrigerator",
                        }
                    ],
                }
            ],
        }
    ],
    "assets": [
        {
            "name": "Pump 1-1",
            "type": "infusion-pump",
            "tag": "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:1:1",
        }
    ],
}


def contract_example() -> dict:
    return copy.deepcopy(CONTRACT_EXAMPLE)


def first_floor(document: dict) -> dict:
    return document["buildings"][0]["floors"][0]
