"""daskscale.learn"""
