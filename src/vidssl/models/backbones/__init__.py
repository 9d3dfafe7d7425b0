"""Video backbones: S3D, R3D-18, R(2+1)D-18, VCOP-style R3D-10/R(2+1)D-10/C3D."""
