"""A deterministic health-risk data set: wearables and air quality per hospital.

Each hospital serves its own population (non-IID): `hospital_01` a dense city (high
pollution), `hospital_02` an older population (higher heart rate, fewer steps, less
sleep), `hospital_03` a young rural one, `hospital_04` a hot humid coast and
`hospital_05` a mixed suburb. `shift` in [0, 1] moves a hospital's population further
(a wildfire season: much worse air, breathing and sleep), so a model trained before it
sees drift after it. The label `risk` is a health-risk event within a week.

>>> frame = generate("hospital_01", n=4, seed=7)
>>> list(frame.columns)  # doctest: +NORMALIZE_WHITESPACE
['heart_rate', 'steps', 'sleep_hours', 'respiratory_rate', 'body_temp', 'pm25', 'pm10',
 'o3', 'no2', 'temperature', 'humidity', 'risk']
>>> bool(generate("hospital_02", n=50, seed=3).equals(generate("hospital_02", n=50, seed=3)))
True
>>> round(float(generate("hospital_01", 4000, seed=1)["pm25"].mean()
...             - generate("hospital_03", 4000, seed=1)["pm25"].mean()), 0) > 10
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FEATURES", "HOSPITALS", "TARGET", "central", "generate"]

TARGET = "risk"
FEATURES = ["heart_rate", "steps", "sleep_hours", "respiratory_rate", "body_temp", "pm25",
            "pm10", "o3", "no2", "temperature", "humidity"]

# Per hospital: age (mean), air quality factor, activity factor, climate (temp F, humidity)
HOSPITALS: dict[str, dict[str, float]] = {
    "hospital_01": {"age": 45, "air": 1.8, "activity": 0.9, "temp": 70, "humid": 50},
    "hospital_02": {"age": 68, "air": 1.0, "activity": 0.6, "temp": 66, "humid": 45},
    "hospital_03": {"age": 33, "air": 0.5, "activity": 1.3, "temp": 62, "humid": 40},
    "hospital_04": {"age": 50, "air": 0.9, "activity": 1.0, "temp": 84, "humid": 78},
    "hospital_05": {"age": 42, "air": 1.1, "activity": 1.1, "temp": 72, "humid": 55},
}


def generate(hospital: str, n: int = 2000, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """`n` patients of `hospital`; `shift` in [0, 1] is how far a wildfire season went."""
    if hospital not in HOSPITALS:
        raise ValueError(f"unknown hospital {hospital!r}; choose from {', '.join(HOSPITALS)}.")
    if n < 0:
        raise ValueError("n must be zero or more.")
    if not 0.0 <= shift <= 1.0:
        raise ValueError("shift must lie in [0, 1].")
    site = HOSPITALS[hospital]
    offset = int(hospital.rsplit("_", 1)[1])
    rng = np.random.default_rng(seed * 1009 + offset)
    age = np.clip(rng.normal(site["age"], 12, n), 18, 95)
    air = site["air"] * (1 + 2.5 * shift)
    pm25 = rng.gamma(4.0, 3.0 * air, n)
    pm10 = pm25 * rng.uniform(1.3, 2.0, n) + rng.gamma(2.0, 3.0, n)
    o3 = np.clip(rng.normal(0.035 + 0.01 * air, 0.01, n), 0.005, None)
    no2 = np.clip(rng.normal(0.012 * air, 0.005, n), 0.001, None)
    temperature = rng.normal(site["temp"] + 6 * shift, 7, n)
    humidity = np.clip(rng.normal(site["humid"], 12, n), 5, 100)
    steps = np.clip(rng.normal(9000 * site["activity"] - 40 * (age - 40), 2500, n)
                    * (1 - 0.3 * shift), 0, None)
    heart_rate = rng.normal(66 + 0.15 * (age - 40) + 0.08 * pm25, 8, n)
    sleep_hours = np.clip(rng.normal(7.4 - 0.01 * (age - 40) - 0.6 * shift, 1.0, n), 2, 12)
    respiratory_rate = rng.normal(14.5 + 0.04 * pm25 + 0.02 * (age - 40), 1.8, n)
    body_temp = rng.normal(98.2 + 0.004 * (temperature - 70), 0.5, n)
    logit = (-1.3
             + 0.045 * (heart_rate - 72)
             - 0.00012 * (steps - 8000)
             - 0.35 * (sleep_hours - 7)
             + 0.22 * (respiratory_rate - 16)
             + 0.9 * (body_temp - 98.6)
             + 0.03 * (pm25 - 12)
             + 8.0 * (no2 - 0.015)
             + 0.01 * (humidity - 50))
    risk = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return pd.DataFrame({
        "heart_rate": heart_rate.round(1),
        "steps": steps.round(),
        "sleep_hours": sleep_hours.round(2),
        "respiratory_rate": respiratory_rate.round(1),
        "body_temp": body_temp.round(2),
        "pm25": pm25.round(2),
        "pm10": pm10.round(2),
        "o3": o3.round(4),
        "no2": no2.round(4),
        "temperature": temperature.round(1),
        "humidity": humidity.round(1),
        TARGET: risk,
    })


def central(n_per_site: int = 600, seed: int = 100, hospitals: list[str] | None = None,
            ) -> pd.DataFrame:
    """The platform's validation set: a consented sample from every hospital, disjoint
    from the sites' training data (another seed)."""
    names = hospitals or list(HOSPITALS)[:3]
    return pd.concat([generate(name, n_per_site, seed=seed) for name in names],
                     ignore_index=True)
