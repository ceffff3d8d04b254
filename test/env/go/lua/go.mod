// Helper module: builds the gopher-lua runner the Argo CD health check test uses.
module s3eo.test/lua

go 1.26.0

require github.com/yuin/gopher-lua v1.1.2
