"""The transport-free engine room."""

from bayestream.engine.engine import DeadLetter, Engine, Outputs
from bayestream.engine.sensor import NullSensor, Sensor

__all__ = ["DeadLetter", "Engine", "NullSensor", "Outputs", "Sensor"]
