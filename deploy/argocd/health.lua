-- Argo CD health check for s3encryption.dev/EncryptionJob.
-- Install it in argocd-cm as resource.customizations.health.s3encryption.dev_EncryptionJob
-- (docs/argocd.md). Tests: health_test.yaml, run by test/ship/argocd.test.ts.
-- Argo CD runs a check from argocd-cm without Lua's string and math libraries
-- (unless useOpenLibs is set), so messages are built by plain concatenation.
local hs = { status = "Progressing", message = "Waiting for the operator to pick the job up" }

local function condition(conditions, type)
  if conditions == nil then return nil end
  for _, c in ipairs(conditions) do
    if c.type == type and c.status == "True" then return c end
  end
  return nil
end

local function count(progress, field)
  if progress == nil or progress[field] == nil then return 0 end
  return progress[field]
end

local status = obj.status
if status == nil then return hs end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local conditions = status.conditions
local failed = condition(conditions, "Failed")
if failed ~= nil then
  hs.status = "Degraded"
  hs.message = (failed.reason or "Failed") .. ": " .. (failed.message or "")
  return hs
end

-- Completed with failed objects: the run is over, but some objects are not at the target
-- encryption, so the application has not reached the state it asks for (Degraded, not Healthy).
local complete = condition(conditions, "Complete")
if complete ~= nil and complete.reason == "CompletedWithFailures" then
  hs.status = "Degraded"
  hs.message = "CompletedWithFailures: " .. (complete.message or "")
  return hs
end
if complete ~= nil then
  hs.status = "Healthy"
  hs.message = complete.message or "Complete"
  return hs
end

local suspended = condition(conditions, "Suspended")
if suspended ~= nil or (obj.spec ~= nil and obj.spec.suspend == true) then
  hs.status = "Suspended"
  hs.message = "Suspended: spec.suspend is true; the checkpoint is kept"
  return hs
end

-- Stalled while not over: waiting on a person (worker pods that cannot start: a quota, an image
-- pull), Degraded as Argo CD shows a Deployment past its progress deadline; the job goes on by
-- itself once the cause is fixed.
local stalled = condition(conditions, "Stalled")
if stalled ~= nil then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. (stalled.message or "")
  return hs
end

-- Waiting for something outside the job (its credentials Secret): say what.
if status.phase == "Pending" and conditions ~= nil then
  for _, c in ipairs(conditions) do
    if c.type == "Progressing" and c.status == "False" then
      hs.message = "Waiting: " .. (c.reason or "") .. ": " .. (c.message or "")
      return hs
    end
  end
end

local progressing = condition(conditions, "Progressing")
if progressing ~= nil then
  local p = status.progress
  local done = count(p, "encrypted") + count(p, "alreadyEncrypted")
  hs.message = done .. "/" .. count(p, "scanned") .. " objects"
  local failedObjects = count(p, "failed")
  if failedObjects > 0 then
    hs.message = hs.message .. ", " .. failedObjects .. " failed"
  end
  if progressing.reason == "Retrying" or progressing.reason == "Planning" then
    hs.message = hs.message .. " (" .. progressing.reason .. ": " .. (progressing.message or "") .. ")"
  end
  return hs
end

return hs
