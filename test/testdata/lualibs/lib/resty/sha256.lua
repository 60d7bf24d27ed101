-- OpenResty installs this module as resty.sha256; Debian as nginx.sha256.
return require "nginx.sha256"
