"""Phase 8, the learning loop: outcome memory, fine-tuning data, LoRA training."""
