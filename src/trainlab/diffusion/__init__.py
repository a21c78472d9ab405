"""DDPM diffusion: noise schedules, the noise-prediction network, training, sampling,
classifier-free guidance, a diffusion classifier and sample-quality metrics.

The pieces used most, importable from here::

    from trainlab.diffusion import make_scheduler, make_noise_model, train_ddpm, sample
    sched = make_scheduler("cosine", T=100)
"""

from trainlab.diffusion.classifier import DiffusionClassifier
from trainlab.diffusion.ddpm import make_noise_model, sample, train_ddpm
from trainlab.diffusion.guidance import sample_cfg
from trainlab.diffusion.metrics import emd, kde_nll
from trainlab.diffusion.schedules import NoiseScheduler, make_scheduler

__all__ = ["DiffusionClassifier", "NoiseScheduler", "emd", "kde_nll", "make_noise_model", "make_scheduler",
           "sample", "sample_cfg", "train_ddpm"]
