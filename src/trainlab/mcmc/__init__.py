"""Langevin MCMC (ULA and MALA over many chains at once, BlackJAX-shaped) and its diagnostics.

``langevin`` is the sampler module: ``langevin.init``, ``langevin.mala_step``,
``langevin.ula_step`` for a hand-written loop, ``langevin.sample`` for the whole run::

    from trainlab.mcmc import langevin, summarize
    result = langevin.sample(energy, x0, method="mala", tau=0.1)   # energy: x -> E(x) per chain
"""

from trainlab.mcmc import langevin
from trainlab.mcmc.adaptation import DualAveraging
from trainlab.mcmc.diagnostics import ess_bulk, ess_tail, rhat, summarize
from trainlab.mcmc.targets import GaussianEnergy

__all__ = ["DualAveraging", "GaussianEnergy", "ess_bulk", "ess_tail", "langevin", "rhat", "summarize"]
