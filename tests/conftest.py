"""Test-session setup.

The ``cpu`` backend compiles one kernel per combination of options by default
(``cpu_kernels.Variant``); the suite sweeps far more combinations than a user does, so it runs
the generic kernels, which read every option at run time and compile once.
``tests/test_specialised_kernels.py`` checks the specialised kernels against them.
"""

import os

os.environ.setdefault("SOFTRAS_CPU_KERNELS", "generic")
