"""Run-time support shared by every layer: the task executor (Ray), progress bars and
temporary tool environments. Imports nothing of the project."""
