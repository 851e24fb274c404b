-- pipeline.lua: wrk sends 16 GET / requests per write (tests/load/compare/run.sh, "pipelined
-- x16"); wrk counts each response, so its requests/s are requests, not batches.
init = function(args)
  local r = {}
  for i = 1, 16 do
    r[i] = wrk.format(nil, "/")
  end
  req = table.concat(r)
end

request = function()
  return req
end
