"""Forward models: FFTs, masks, SENSE operators, coil sensitivities, resolution change; L1-wavelet SENSE."""
