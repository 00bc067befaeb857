"""daskscale.transfer"""
