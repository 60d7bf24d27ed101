require("ngx.ssl").clear_certs()
