"""FHIR R4 read API (docs/fhir.md): assets and sensors as Device, the site as Location,
departments as Organization, temperatures and excursions as Observation."""
