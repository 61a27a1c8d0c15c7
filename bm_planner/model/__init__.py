"""State–action diffusion model: configs, noise schedules and scheduler, DifferentiatedTransformer, sampler."""

from bm_planner.model.config import MODEL_PRESETS, ConfigError, ModelConfig
from bm_planner.model.diffusion import LossOutput, StateActionDiffusionModel
from bm_planner.model.sampling import Guidance, Plan, sample_plan
from bm_planner.model.scheduler import NoiseScheduler, SchedulerOutput
from bm_planner.model.schedules import cosine_betas, level_alphas_cumprod, level_schedule, linear_betas, make_betas
from bm_planner.model.transformer import DifferentiatedTransformer, build_attention_mask

__all__ = [
    "MODEL_PRESETS",
    "ConfigError",
    "DifferentiatedTransformer",
    "Guidance",
    "LossOutput",
    "ModelConfig",
    "NoiseScheduler",
    "Plan",
    "SchedulerOutput",
    "StateActionDiffusionModel",
    "build_attention_mask",
    "cosine_betas",
    "level_alphas_cumprod",
    "level_schedule",
    "linear_betas",
    "make_betas",
    "sample_plan",
]
