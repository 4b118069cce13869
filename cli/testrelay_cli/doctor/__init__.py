"""`testrelay doctor`: a read-only preflight of a routes file against the vendors, before deploying."""

from __future__ import annotations

from testrelay_cli.doctor.checks import Check, DoctorSettings, run_doctor
from testrelay_cli.doctor.command import add_doctor_command, cmd_doctor

__all__ = ["Check", "DoctorSettings", "add_doctor_command", "cmd_doctor", "run_doctor"]
