"""daskscale.online"""
