"""The networks: the three MCU backbones as data (`models`), their released ImageNet weights
(`weights`), the one door to a backbone's parameters (`checkpoints`) and the parallel adapter
branches some methods add (`branches`)."""
