"""Running a fit: checkpoints and their settings, resuming, SLURM jobs, W&B runs, config logging."""
