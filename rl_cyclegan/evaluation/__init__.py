"""Evaluation: policy success in an appearance (policy_eval), scene metrics of a generator on
held-out paired renders (scene_metrics, paired_set, segmentation_set) and the TensorBoard
summaries of a training run (summaries)."""
