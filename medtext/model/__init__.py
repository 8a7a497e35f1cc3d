"""The LightningModule and what it is made of: tasks, calibration, optimizer set-up, windows."""
