"""Training one job: `trainer.Trainer` (model, optimizer, batch order, epochs, early stopping,
mid-run settings, checkpoint state), `protocol` (`TrainerLike`, what the engine uses of a
trainer, and `Diverged`), `optim` (losses, L1/L2 penalties, optimizers,
learning-rate schedules) and `metrics` (per-split accuracy, macro precision/recall/F1, ROC AUC,
confusion matrix, MAE, R^2).

Nothing here knows about threads, the store, the stream or the web: the engine calls a
`Trainer` and forwards the metric records it returns.
"""
