"""Off-manager copies of snapshots: folder and S3 stores, streamed receiving, verification, zip checks while
streaming."""
