"""Checks of docker-compose.yml, the Dockerfile and deploy/ (no Docker engine, no cluster:
schemas, linters and promtool, offline)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
