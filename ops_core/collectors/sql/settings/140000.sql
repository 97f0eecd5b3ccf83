SELECT /* opscore */ name, setting, unit, source
  FROM pg_settings
 WHERE source <> 'default'
 ORDER BY name
