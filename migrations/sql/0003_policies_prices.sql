-- Projections of tenant and key policies, the price table, and providers'
-- default prices.

CREATE TABLE policies (
    scope text NOT NULL,
    id uuid NOT NULL,
    policy jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (scope, id)
);

CREATE TABLE prices (
    model text PRIMARY KEY,
    input_per_million double precision NOT NULL,
    output_per_million double precision NOT NULL,
    updated_at timestamptz NOT NULL
);

ALTER TABLE providers ADD COLUMN input_per_million double precision;

ALTER TABLE providers ADD COLUMN output_per_million double precision;
