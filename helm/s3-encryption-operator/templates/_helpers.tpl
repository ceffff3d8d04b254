{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "s3eo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it contains the chart name, else RELEASE-CHART. */}}
{{- define "s3eo.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels every object carries (the kustomize manifests in deploy/ carry the same, minus the Helm ones). */}}
{{- define "s3eo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "s3eo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: s3-encryption-operator
{{- end }}

{{/* Selector labels: stable for the life of a release. */}}
{{- define "s3eo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "s3eo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "s3eo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "s3eo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "s3eo.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Fails the render with a clear message when a monitoring.coreos.com kind is enabled
but the cluster does not serve it. Arguments: (list . "ServiceMonitor" "serviceMonitor.enabled").
*/}}
{{- define "s3eo.requireMonitoringKind" -}}
{{- $ctx := index . 0 }}
{{- $kind := index . 1 }}
{{- $flag := index . 2 }}
{{- if not ($ctx.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" $kind)) }}
{{- fail (printf "%s=true, but this cluster does not serve monitoring.coreos.com/v1 %s: install the Prometheus Operator CRDs first (or set %s=false). With `helm template`, pass --api-versions monitoring.coreos.com/v1/%s." $flag $kind $flag $kind) }}
{{- end }}
{{- end }}

{{/* The ClusterRole a namespace binds to the operator to allow worker pods (deploy/rbac/role_workers.yaml). */}}
{{- define "s3eo.workersClusterRole" -}}
{{- printf "%s-workers" (include "s3eo.fullname" .) }}
{{- end }}
