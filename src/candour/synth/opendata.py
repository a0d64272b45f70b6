"""A small non-personal open-data feed: road-surface temperatures from gritting-route sensors."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROUTES = (
    "A21 Primary",
    "A28 Primary",
    "A229 Primary",
    "B2067 Secondary",
    "Town Centre Loop",
    "Downs Secondary",
)
SENSORS_PER_ROUTE = 4
FEED_START = datetime(2024, 11, 1)
FEED_DAYS = 151  # November to March: the gritting season


def write_road_surface_temperatures(path: Path, seed: int) -> int:
    """Write hourly sensor readings for one winter; returns the number of rows written."""
    rng = np.random.default_rng([seed, 7_000_003])
    hours = FEED_DAYS * 24
    n_sensors = len(ROUTES) * SENSORS_PER_ROUTE
    t = np.arange(hours)
    day = t // 24
    # Weather: a seasonal curve (coldest in January) plus a day-to-day random walk.
    seasonal = 6.0 - 5.0 * np.sin(np.pi * day / FEED_DAYS)
    weather = np.cumsum(rng.normal(0, 1.0, FEED_DAYS)) * 0.6
    weather -= np.linspace(0, weather[-1], FEED_DAYS)  # no drift over the season
    diurnal = 3.5 * np.sin(2 * np.pi * ((t % 24) - 9) / 24)
    air = (seasonal + weather[day] + diurnal)[None, :] + rng.normal(0, 0.5, (n_sensors, hours))
    exposure = rng.normal(0, 0.8, n_sensors)[:, None]  # shaded or high sensors run colder
    night = ((t % 24) < 7) | ((t % 24) > 18)
    road = air + exposure - 1.6 * night[None, :] + rng.normal(0, 0.3, (n_sensors, hours))
    stamps = [
        (FEED_START + timedelta(hours=int(h))).strftime("%Y-%m-%dT%H:%M:%SZ") for h in range(hours)
    ]
    sensor_ids = [
        f"WGR-{r + 1:02d}-{s + 1:02d}" for r in range(len(ROUTES)) for s in range(SENSORS_PER_ROUTE)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["sensor_id", "route", "timestamp", "road_surface_temp_c", "air_temp_c"])
        for h in range(hours):
            for k in range(n_sensors):
                writer.writerow(
                    [
                        sensor_ids[k],
                        ROUTES[k // SENSORS_PER_ROUTE],
                        stamps[h],
                        f"{road[k, h]:.1f}",
                        f"{air[k, h]:.1f}",
                    ]
                )
    return hours * n_sensors
