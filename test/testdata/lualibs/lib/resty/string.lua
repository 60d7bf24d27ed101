-- OpenResty installs this module as resty.string; Debian as nginx.string.
return require "nginx.string"
