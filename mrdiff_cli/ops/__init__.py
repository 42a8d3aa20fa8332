"""Forward models: FFTs, masks, SENSE operators, coil sensitivities, resolution change."""
