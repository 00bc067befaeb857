"""daskscale.grid"""
