-- Provider kinds: each provider's kind-specific settings (an Azure API version, a
-- Bedrock region, ...); each usage record says which operation the request was and
-- which API dialect the client spoke. Records written without them are chat
-- completions in OpenAI's dialect, the only kind there was before.

ALTER TABLE providers ADD COLUMN options jsonb NOT NULL DEFAULT '{}'::jsonb;

-- 'chat' | 'messages' | 'embeddings'; no CHECK: a record is never refused
ALTER TABLE usage ADD COLUMN operation text NOT NULL DEFAULT 'chat';

-- 'openai' | 'anthropic'
ALTER TABLE usage ADD COLUMN dialect text NOT NULL DEFAULT 'openai';
