-- OpenResty installs this module as resty.redis; Debian as nginx.redis.
return require "nginx.redis"
