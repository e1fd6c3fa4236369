"""What a finished job actually cost: energy, green share and emissions of its run.

Pure: the controller hands in the run time and what the site was observed to be during
it (:meth:`suandian.controllers.context.Context.observed`: at each forecast refresh, the
provider's green supply and grid intensity for "now" and the power the site's running
jobs drew). The job's green share is the site's observed one, green supply over compute
power capped at 1, averaged over the run: jobs at one site share its supply, so a job
does not count green power another job used. Without observations (a site never
refreshed while it ran) the plan's expected share and the site's configured grid
intensity stand in, and the account says it was not measured.

    energy    = P_job × run time × PUE                      (kWh)
    emissions = energy × (1 − green share) × grid intensity (g)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RunAccount", "account_run"]


@dataclass(frozen=True)
class RunAccount:
    """One finished run: energy (kWh), green share, grid intensity (g/kWh), emissions (g),
    and whether the share and intensity were observed (else planned/configured)."""

    run_s: float
    energy_kwh: float
    green_share: float
    carbon_g_per_kwh: float
    emissions_g: float
    measured: bool

    @property
    def green_kwh(self) -> float:
        return self.energy_kwh * self.green_share

    @property
    def grid_kwh(self) -> float:
        return self.energy_kwh * (1.0 - self.green_share)


def account_run(*, power_w: float, pue: float, run_s: float,
                observed_green_share: float | None, observed_carbon: float | None,
                planned_green_share: float, configured_carbon: float) -> RunAccount:
    """The account of a run (see the module docstring for the formula)."""
    measured = observed_green_share is not None and observed_carbon is not None
    green = observed_green_share if observed_green_share is not None else planned_green_share
    green = min(1.0, max(0.0, float(green)))
    carbon = observed_carbon if observed_carbon is not None else configured_carbon
    energy = max(0.0, power_w) / 1000.0 * max(0.0, run_s) / 3600.0 * pue
    return RunAccount(run_s=run_s, energy_kwh=energy, green_share=green,
                      carbon_g_per_kwh=carbon, emissions_g=energy * (1.0 - green) * carbon,
                      measured=measured)
