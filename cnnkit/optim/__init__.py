"""Optimisers and learning-rate schedulers with torch.optim's update rules."""
