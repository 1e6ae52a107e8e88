{{/* Names, labels and the pieces every fedredirect pod shares. */}}

{{- define "fedredirect.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name; components append -router, -checker, -redis, -sentinel. */}}
{{- define "fedredirect.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "fedredirect.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "fedredirect.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "router"). */}}
{{- define "fedredirect.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fedredirect.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fedredirect.componentLabels" -}}
{{ include "fedredirect.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fedredirect.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) -}}
{{- end -}}

{{/* Names of the bundled Redis's pods and services. */}}
{{- define "fedredirect.redisName" -}}{{ include "fedredirect.fullname" . }}-redis{{- end -}}
{{- define "fedredirect.sentinelName" -}}{{ include "fedredirect.fullname" . }}-sentinel{{- end -}}
{{- define "fedredirect.redisHeadless" -}}{{ include "fedredirect.redisName" . }}-headless{{- end -}}
{{- define "fedredirect.sentinelHeadless" -}}{{ include "fedredirect.sentinelName" . }}-headless{{- end -}}

{{/* The DNS name of pod ORDINAL of the redis or sentinel StatefulSet:
     include "fedredirect.podHost" (dict "ctx" $ "set" "redis" "ordinal" 0). */}}
{{- define "fedredirect.podHost" -}}
{{- $set := ternary (include "fedredirect.redisName" .ctx) (include "fedredirect.sentinelName" .ctx) (eq .set "redis") -}}
{{- printf "%s-%d.%s-headless.%s.svc.cluster.local" $set (int .ordinal) $set .ctx.Release.Namespace -}}
{{- end -}}

{{/* Every sentinel as HOST:PORT, separated by SEP: include ... (dict "ctx" $ "sep" ","). */}}
{{- define "fedredirect.sentinelAddresses" -}}
{{- $hosts := list -}}
{{- range $i := until 3 -}}
{{- $hosts = append $hosts (printf "%s:26379" (include "fedredirect.podHost" (dict "ctx" $.ctx "set" "sentinel" "ordinal" $i))) -}}
{{- end -}}
{{- join .sep $hosts -}}
{{- end -}}

{{/* Every redis pod as HOST:PORT, separated by spaces. */}}
{{- define "fedredirect.redisAddresses" -}}
{{- $hosts := list -}}
{{- range $i := until 3 -}}
{{- $hosts = append $hosts (printf "%s:6379" (include "fedredirect.podHost" (dict "ctx" $ "set" "redis" "ordinal" $i))) -}}
{{- end -}}
{{- join " " $hosts -}}
{{- end -}}

{{/* Refuse value combinations that cannot work, with the fix in the message. */}}
{{- define "fedredirect.validate" -}}
{{- $r := .Values.redis -}}
{{- if and $r.existingSecret $r.sentinel.enabled -}}
{{- fail "redis: set either redis.existingSecret (an existing Redis) or redis.sentinel.enabled (the bundled one), not both: add --set redis.sentinel.enabled=false" -}}
{{- end -}}
{{- if not (or $r.existingSecret $r.sentinel.enabled) -}}
{{- fail "redis: no Redis configured: set redis.existingSecret (a Secret holding the URL) or redis.sentinel.enabled=true" -}}
{{- end -}}
{{- if not (kindIs "map" (default dict .Values.config)) -}}
{{- fail "config: must be a mapping (the legacy `hosts` format or the native `members` format)" -}}
{{- end -}}
{{- $config := include "fedredirect.config" . | fromJson -}}
{{- if not (or (hasKey $config "hosts") (hasKey $config "members")) -}}
{{- fail "config: has neither `hosts` (legacy format) nor `members` (native format)" -}}
{{- end -}}
{{- end -}}

{{/* The federation config as JSON: the values' `config`, or the placeholder when empty. */}}
{{- define "fedredirect.placeholderConfig" -}}
{{- dict "members" (dict "example" (dict "url" "https://example.org" "weight" 1 "prime" true)) | toJson -}}
{{- end -}}
{{- define "fedredirect.config" -}}
{{- if .Values.config -}}
{{- .Values.config | toJson -}}
{{- else -}}
{{- include "fedredirect.placeholderConfig" . -}}
{{- end -}}
{{- end -}}

{{/* The Redis connection of router and checker containers, as environment variables. */}}
{{- define "fedredirect.redisEnv" -}}
{{- $r := .Values.redis -}}
{{- if $r.existingSecret }}
- name: FEDREDIRECT_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $r.existingSecret }}
      key: {{ $r.existingSecretKey }}
{{- else }}
{{- $auth := "" }}
{{- if $r.sentinel.auth.existingSecret }}
{{- $auth = ":$(REDIS_PASSWORD)@" }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $r.sentinel.auth.existingSecret }}
      key: {{ $r.sentinel.auth.existingSecretKey }}
{{- end }}
- name: FEDREDIRECT_REDIS_URL
  value: {{ printf "redis+sentinel://%s%s/%s/0" $auth (include "fedredirect.sentinelAddresses" (dict "ctx" . "sep" ",")) $r.sentinel.masterName | quote }}
{{- end }}
- name: FEDREDIRECT_KEY_PREFIX
  value: {{ .Values.keyPrefix | quote }}
{{- end -}}

{{/* Soft anti-affinity over nodes for a component unless the values give an affinity. */}}
{{- define "fedredirect.affinity" -}}
{{- if .affinity -}}
{{ toYaml .affinity }}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "fedredirect.selectorLabels" . | nindent 12 }}
{{- end -}}
{{- end -}}
