"""Input and output: ``io.images`` (read the images people have as uint8 RGB, write decoded images) and
``io.storage`` (local folders and S3 prefixes through fsspec). Nothing is imported here, so importing one
does not pull in the other's dependencies."""
