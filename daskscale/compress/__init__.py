"""daskscale.compress"""
