"""Models and training: timm backbones and their weights, feature extraction, fine-tuning."""
