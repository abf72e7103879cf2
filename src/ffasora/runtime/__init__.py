"""How the models run on one kind of hardware: switched on from outside, the models stay plain PyTorch."""
