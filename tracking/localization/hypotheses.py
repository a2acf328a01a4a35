"""One zone-hypothesis update, compiled: candidate zones, one fit per zone, their posterior.

The model is described in `LocalizationEngine._zone_update`. The fits themselves were always
compiled (`solver.fit_in_boxes`); what surrounded them (choosing candidates, the transition
prior, the Occam and direct-evidence terms, normalising) was interpreted Python and cost more
than the fits themselves (docs/performance.md). The arithmetic and its order are those of the
interpreted version it replaced (on a simulated trace the estimates and tag states came out the
same, float for float); the tests compare this function with `zone_step.py_func`, the same code
interpreted.
"""

from __future__ import annotations

import math

import numpy as np

from tracking.localization.solver import compiled, fit_in_boxes


@compiled
def zone_step(
    rows,
    sources,
    wall_counts,
    wall_loss,
    resolution,
    columns,
    grid_rows,
    start_x,
    start_y,
    centroid_x,
    centroid_y,
    prior_sigma,
    floor_bounds,
    zone_grid,
    zone_boxes,
    zone_priors,
    zone_log_spread,
    neighbours,
    neighbour_count,
    hub,
    direct_table,
    scanner_zone,
    current_zone,
    previous_zones,
    previous_probabilities,
    switch,
    hypotheses,
    far_jump,
    temper,
    occam_weight,
    direct_weight,
    direct_temperature,
    huber_k,
    inv_b,
    max_iterations,
    tolerance_m,
):
    """Returns (candidate zones, their posterior, their fits as `fit_in_boxes` rows, the free fit).

    `previous_zones` / `previous_probabilities` are the tag's posterior in its dict's order
    (the order sums run in); `scanner_zone` is the zone each of the floor's scanners is mounted
    in (-1: none). No candidate at all returns empty arrays and the free fit, which is the
    answer then.
    """
    one = np.empty((1, 2))
    one[0, 0] = start_x
    one[0, 1] = start_y
    box = np.empty((1, 4))
    box[0, :] = floor_bounds
    prior = np.empty((1, 4))
    prior[0, 0] = centroid_x
    prior[0, 1] = centroid_y
    prior[0, 2] = prior_sigma
    prior[0, 3] = prior_sigma
    free = fit_in_boxes(
        rows,
        sources,
        wall_counts,
        wall_loss,
        resolution,
        columns,
        grid_rows,
        one,
        box,
        prior,
        huber_k,
        inv_b,
        max_iterations,
        tolerance_m,
    )[0]

    count = rows.shape[0]
    # the two loudest scanners relative to their 1 m power, first ones first on ties (a stable
    # sort on p0 - rssi, as the interpreted version did)
    first = -1
    second = -1
    for i in range(count):
        if first < 0 or -rows[i, 3] < -rows[first, 3]:
            second = first
            first = i
        elif second < 0 or -rows[i, 3] < -rows[second, 3]:
            second = i
    # a stable sort of the previous zones by falling probability
    order = np.arange(previous_zones.shape[0])
    for i in range(1, order.shape[0]):
        j = i
        while j > 0 and previous_probabilities[order[j - 1]] < previous_probabilities[order[j]]:
            order[j - 1], order[j] = order[j], order[j - 1]
            j -= 1

    proposals = np.full(6 + previous_zones.shape[0], -1, dtype=np.int64)
    proposals[0] = current_zone
    proposals[1] = _zone_near(zone_grid, resolution, columns, grid_rows, free[0], free[1])
    if first >= 0:
        proposals[2] = scanner_zone[sources[first]]
    if current_zone >= 0:
        proposals[3] = hub[current_zone]
    if second >= 0:  # one measurement has no second loudest to propose
        proposals[4] = scanner_zone[sources[second]]
    proposals[5] = _zone_near(zone_grid, resolution, columns, grid_rows, centroid_x, centroid_y)
    for i in range(order.shape[0]):
        proposals[6 + i] = previous_zones[order[i]]
    candidates = np.empty(hypotheses, dtype=np.int64)
    found = 0
    for zone in proposals:
        if zone >= 0:
            known = False
            for k in range(found):
                if candidates[k] == zone:
                    known = True
            if not known:
                candidates[found] = zone
                found += 1
        if found >= hypotheses:
            break
    candidates = candidates[:found]
    if found == 0:
        return candidates, np.empty(0), np.empty((0, 8)), free

    starts = np.empty((found, 2))
    boxes = np.empty((found, 4))
    priors = np.empty((found, 4))
    for k in range(found):
        zone = candidates[k]
        boxes[k, :] = zone_boxes[zone]
        priors[k, :] = zone_priors[zone]
        starts[k, 0] = min(max(start_x, zone_boxes[zone, 0]), zone_boxes[zone, 2])
        starts[k, 1] = min(max(start_y, zone_boxes[zone, 1]), zone_boxes[zone, 3])
    fits = fit_in_boxes(
        rows,
        sources,
        wall_counts,
        wall_loss,
        resolution,
        columns,
        grid_rows,
        starts,
        boxes,
        priors,
        huber_k,
        inv_b,
        max_iterations,
        tolerance_m,
    )

    direct = np.empty(count)
    direct_total = 0.0
    if direct_weight > 0:
        loudest = rows[0, 3]
        for i in range(1, count):
            loudest = max(loudest, rows[i, 3])
        for i in range(count):
            direct[i] = math.exp((rows[i, 3] - loudest) / direct_temperature)
            direct_total += direct[i]
    log_posterior = np.empty(found)
    for k in range(found):
        zone = candidates[k]
        cost = fits[k, 3]
        var_x = fits[k, 4]
        cov_xy = fits[k, 5]
        var_y = fits[k, 6]
        log_prior = 0.0
        if previous_zones.shape[0]:
            mass = far_jump
            for p in range(previous_zones.shape[0]):
                source = previous_zones[p]
                if source == zone:
                    mass += previous_probabilities[p] * (1.0 - switch)
                elif neighbours[source, zone]:
                    mass += previous_probabilities[p] * switch / max(neighbour_count[source], 1)
            log_prior = math.log(mass)
        occam = 0.5 * math.log(max(var_x * var_y - cov_xy * cov_xy, 1e-12)) - zone_log_spread[zone]
        log_posterior[k] = log_prior - temper * cost / 2.0 + occam_weight * occam
        if direct_weight > 0:
            affinity = 0.0
            for i in range(count):
                affinity += direct[i] * direct_table[sources[i], zone]
            log_posterior[k] += direct_weight * math.log(affinity / direct_total)
    top = log_posterior[0]
    for k in range(1, found):
        top = max(top, log_posterior[k])
    weights = np.empty(found)
    total = 0.0
    for k in range(found):
        weights[k] = math.exp(log_posterior[k] - top)
        total += weights[k]
    return candidates, weights / total, fits, free


@compiled
def _zone_near(zone_grid, resolution, columns, grid_rows, x, y):
    """The zone (or -1) at the wall-grid cell of (x, y), as `WallGrid.cell` finds it."""
    column = min(max(int(x / resolution), 0), columns - 1)
    row = min(max(int(y / resolution), 0), grid_rows - 1)
    return zone_grid[row * columns + column]
